"""Checks the wire-level CloudWatch Logs fake (tests/api/logs_fake.rs)
against botocore's own `logs` model, with botocore's own machinery: each
request is built by botocore's JSON (awsJson1.1) serializer, each answer
parsed by its parser and its raw body walked against the output shape
(`walk` from connect_model.py).

Usage: logs_model.py FAKE_URL GROUP STREAM EVENT_COUNT
The fake is started with a throttling burst of one request and empty pages.
Prints one line per check; exits 1 if any failed.
"""

import json
import sys
import urllib.error
import urllib.request

import botocore.session
from botocore import parsers, serialize

import connect_model
from connect_model import expect, fail, walk


class Fake:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.model = botocore.session.get_session().get_service_model("logs")
        protocol = self.model.metadata["protocol"]
        self.serializer = serialize.create_serializer(protocol, include_validation=True)
        self.parser = parsers.create_parser(protocol)

    def call(self, name, params):
        op = self.model.operation_model(name)
        req = self.serializer.serialize_to_request(params, op)
        body = req["body"]
        if isinstance(body, str):
            body = body.encode()
        http = urllib.request.Request(
            self.url + req["url_path"], data=body, method=req["method"], headers=dict(req["headers"])
        )
        try:
            with urllib.request.urlopen(http, timeout=10) as resp:
                status, headers, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers), e.read()
        parsed = self.parser.parse(
            {"status_code": status, "headers": headers, "body": raw}, op.output_shape
        )
        if status == 200:
            walk(json.loads(raw or b"{}"), op.output_shape, name)
        print(f"{name} ({req['headers'].get('X-Amz-Target')}) -> {status}")
        return status, parsed


def main():
    url, group, stream, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    fake = Fake(url)

    status, out = fake.call("DescribeLogStreams", {"logGroupName": group})
    expect(
        status == 400 and out.get("Error", {}).get("Code") == "ThrottlingException",
        "a throttled call is a ThrottlingException botocore recognises",
    )

    status, out = fake.call(
        "DescribeLogStreams",
        {"logGroupName": group, "orderBy": "LastEventTime", "descending": True, "limit": 25},
    )
    expect(
        status == 200 and [s["logStreamName"] for s in out.get("logStreams", [])] == [stream],
        "DescribeLogStreams lists the stream",
    )

    # GetLogEvents: empty pages first; the end is a forward token that stops changing.
    params = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 50}
    events, empty, token, calls = 0, 0, None, 0
    while calls < 200:
        p = dict(params)
        if token:
            p["nextToken"] = token
        status, out = fake.call("GetLogEvents", p)
        calls += 1
        if status != 200:
            fail(f"GetLogEvents answered {status}")
            break
        n = len(out.get("events", []))
        events += n
        empty += n == 0
        forward = out.get("nextForwardToken")
        if forward == token:
            break
        token = forward
    expect(events == count, f"GetLogEvents reaches all {count} events across empty pages ({events})")
    expect(empty > 1, f"GetLogEvents served empty pages before the end ({empty})")

    # FilterLogEvents: empty pages before the end; the end is no token.
    params = {"logGroupName": group, "startTime": 0, "endTime": 4102444800000}
    events, empty, token, calls = 0, 0, None, 0
    while calls < 200:
        p = dict(params)
        if token:
            p["nextToken"] = token
        status, out = fake.call("FilterLogEvents", p)
        calls += 1
        if status != 200:
            fail(f"FilterLogEvents answered {status}")
            break
        n = len(out.get("events", []))
        events += n
        empty += n == 0
        token = out.get("nextToken")
        if not token:
            break
    expect(events == count, f"FilterLogEvents reaches all {count} events across empty pages ({events})")
    expect(empty > 1, f"FilterLogEvents served empty pages before the end ({empty})")

    status, out = fake.call("GetLogEvents", dict(params_of(group, stream), nextToken="forged"))
    expect(
        status == 400 and out.get("Error", {}).get("Code") == "InvalidParameterException",
        "a forged token is an InvalidParameterException botocore recognises",
    )
    status, out = fake.call("GetLogEvents", {"logGroupName": group, "logStreamName": "nope"})
    expect(
        status == 400 and out.get("Error", {}).get("Code") == "ResourceNotFoundException",
        "an unknown stream is a ResourceNotFoundException",
    )

    if connect_model.failures:
        print(f"{len(connect_model.failures)} problems")
        sys.exit(1)
    print("the CloudWatch Logs fake matches botocore's model")


def params_of(group, stream):
    return {"logGroupName": group, "logStreamName": stream}


if __name__ == "__main__":
    main()
