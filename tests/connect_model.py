"""Checks the wire-level Connect fake (tests/api/connect_fake.rs) against
botocore's own Connect model, with botocore's own machinery:

* every request is built from the model by botocore's rest-json serializer
  (method, requestUri, which member goes in the path or the query string);
* every response is parsed by botocore's rest-json parser, and its raw body
  is walked against the operation's output shape: no member the model does
  not have, required members present, enum values and types as modelled.

Usage: connect_model.py FAKE_URL INSTANCE_ID CONTACT_ID V2_BOT_COUNT USERS STANDARD_QUEUES
       connect_model.py --requests SERVICE FILE
The second form walks request bodies the console sent (a JSON list of
{"operation", "body"}) against the operations' input shapes of SERVICE's
model (connect, logs): members, types, enums, lengths, required members.
Prints one line per check; exits 1 if any failed.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.session
from botocore import parsers, serialize

failures = []
NOW = int(time.time())


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def bounds(n, shape, where):
    """A length or number against the shape's min and max."""
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and n < lo:
        fail(f"{where}: {n} is under {shape.name}'s min {lo}")
    if hi is not None and n > hi:
        fail(f"{where}: {n} is over {shape.name}'s max {hi}")


def check_requests(service, path):
    """Bodies the console sent, against the model's input shapes."""
    model = botocore.session.get_session().get_service_model(service)
    with open(path) as f:
        sent = json.load(f)
    for i, r in enumerate(sent):
        op = model.operation_model(r["operation"])
        walk(r["body"], op.input_shape, f"{r['operation']} request {i}")
    expect(len(sent) > 0, f"{len(sent)} {service} requests checked against botocore's input shapes")
    if failures:
        print(f"{len(failures)} problems")
        sys.exit(1)
    print(f"the console's {service} requests match botocore's model")


def walk(value, shape, where):
    """Raw JSON body value against a botocore shape."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return fail(f"{where}: expected an object for {shape.name}")
        members = {
            m.serialization.get("name", name): m
            for name, m in shape.members.items()
            if m.serialization.get("location") is None
        }
        for key, v in value.items():
            if key not in members:
                fail(f"{where}: '{key}' is not a member of {shape.name}")
            else:
                walk(v, members[key], f"{where}.{key}")
        for required in shape.required_members:
            located = shape.members[required].serialization.get("location") is not None
            if required not in value and not located:
                fail(f"{where}: required member '{required}' of {shape.name} is missing")
    elif t == "list":
        if not isinstance(value, list):
            return fail(f"{where}: expected a list for {shape.name}")
        bounds(len(value), shape, where)
        for i, item in enumerate(value):
            walk(item, shape.member, f"{where}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            return fail(f"{where}: expected a map for {shape.name}")
        for k, v in value.items():
            walk(k, shape.key, f"{where} key")
            walk(v, shape.value, f"{where}.{k}")
    elif t == "string":
        if not isinstance(value, str):
            return fail(f"{where}: expected a string for {shape.name}")
        if shape.enum and value not in shape.enum:
            fail(f"{where}: '{value}' is not in {shape.name}'s enum")
        bounds(len(value), shape, where)
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            fail(f"{where}: expected an integer for {shape.name}")
        else:
            bounds(value, shape, where)
    elif t in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{where}: expected a number for {shape.name}")
    elif t == "boolean":
        if not isinstance(value, bool):
            fail(f"{where}: expected a boolean for {shape.name}")
    elif t == "timestamp":
        # restJson1 bodies carry epoch seconds unless the shape says otherwise.
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        if fmt == "unixTimestamp" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            fail(f"{where}: expected epoch seconds for {shape.name}")


class Fake:
    def __init__(self, url):
        self.url = url.rstrip("/")
        session = botocore.session.get_session()
        self.model = session.get_service_model("connect")
        protocol = self.model.metadata["protocol"]
        self.serializer = serialize.create_serializer(protocol, include_validation=True)
        self.parser = parsers.create_parser(protocol)

    def call(self, name, params):
        """(status, raw body, parsed response) of one operation."""
        op = self.model.operation_model(name)
        req = self.serializer.serialize_to_request(params, op)
        query = urllib.parse.urlencode(req["query_string"], doseq=True)
        url = self.url + req["url_path"] + ("?" + query if query else "")
        body = req["body"]
        if isinstance(body, str):
            body = body.encode()
        http = urllib.request.Request(
            url,
            data=body or None,
            method=req["method"],
            headers={k: v for k, v in req["headers"].items()},
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
        print(f"{name}: {req['method']} {op.http['requestUri']} -> {status}")
        return status, raw, parsed


def expect(cond, msg):
    if cond:
        print("ok   " + msg)
    else:
        fail(msg)


def main():
    if sys.argv[1] == "--requests":
        return check_requests(sys.argv[2], sys.argv[3])
    url, instance, contact, bots = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    users, queues = int(sys.argv[5]), int(sys.argv[6])
    fake = Fake(url)

    # The test starts the fake with a throttling burst of one request.
    status, _, out = fake.call("DescribeContact", {"InstanceId": instance, "ContactId": contact})
    expect(
        status == 429 and out.get("Error", {}).get("Code") == "ThrottlingException",
        "a throttled call is a 429 ThrottlingException botocore recognises",
    )

    status, _, out = fake.call(
        "DescribeInstanceAttribute", {"InstanceId": instance, "AttributeType": "CONTACTFLOW_LOGS"}
    )
    expect(status == 200, "DescribeInstanceAttribute answers 200")
    expect(
        out.get("Attribute") == {"AttributeType": "CONTACTFLOW_LOGS", "Value": "true"},
        "DescribeInstanceAttribute reports CONTACTFLOW_LOGS as the string 'true'",
    )
    status, _, out = fake.call(
        "DescribeInstanceAttribute",
        {"InstanceId": "00000000-0000-4000-8000-000000000000", "AttributeType": "CONTACTFLOW_LOGS"},
    )
    expect(
        status == 404 and out.get("Error", {}).get("Code") == "ResourceNotFoundException",
        "an unknown instance is a ResourceNotFoundException botocore recognises",
    )

    aliases, token, pages = [], None, 0
    while True:
        params = {"InstanceId": instance, "LexVersion": "V2", "MaxResults": 25}
        if token:
            params["NextToken"] = token
        status, _, out = fake.call("ListBots", params)
        pages += 1
        if status != 200 or pages > 10:
            fail(f"ListBots page {pages} answered {status}")
            break
        aliases += [b["LexV2Bot"]["AliasArn"] for b in out.get("LexBots", [])]
        token = out.get("NextToken")
        if not token:
            break
    expect(len(aliases) == bots, f"ListBots pages through all {bots} V2 bot aliases ({len(aliases)})")
    expect(pages == (bots + 24) // 25 or (bots == 0 and pages == 1), f"ListBots pages of 25 ({pages})")
    status, _, out = fake.call("ListBots", {"InstanceId": instance, "LexVersion": "V1"})
    expect(status == 200 and out.get("LexBots") == [], "ListBots with LexVersion V1 lists no V2 bots")
    list_bots = fake.model.operation_model("ListBots")
    expect(
        list_bots.http["requestUri"] == "/instance/{InstanceId}/bots",
        "ListBots' requestUri is the route the fake serves",
    )

    # Agents and queues by name: every page, botocore's own paging members.
    for op, list_key, name_key, extra, count in (
        ("ListUsers", "UserSummaryList", "Username", {}, users),
        ("ListQueues", "QueueSummaryList", "Name", {"QueueTypes": ["STANDARD"]}, queues),
    ):
        seen, token, pages = [], None, 0
        while True:
            params = {"InstanceId": instance, "MaxResults": 2, **extra}
            if token:
                params["NextToken"] = token
            status, _, out = fake.call(op, params)
            pages += 1
            if status != 200 or pages > 50:
                fail(f"{op} page {pages} answered {status}")
                break
            seen += [(s["Id"], s[name_key]) for s in out.get(list_key, [])]
            token = out.get("NextToken")
            if not token:
                break
        expect(len(seen) == count and len(set(seen)) == count, f"{op} pages through all {count} ({len(seen)})")
    if queues:
        status, _, out = fake.call("ListQueues", {"InstanceId": instance, "QueueTypes": ["AGENT"]})
        expect(
            status == 200 and all(q["QueueType"] == "AGENT" for q in out.get("QueueSummaryList", [])),
            "ListQueues filters by QueueTypes",
        )

    status, _, out = fake.call(
        "SearchContacts",
        {
            "InstanceId": instance,
            "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": NOW - 80 * 86400, "EndTime": NOW + 86400},
            "MaxResults": 10,
        },
    )
    expect(
        status == 200 and any(c.get("Id") == contact for c in out.get("Contacts", [])),
        "SearchContacts finds the contact",
    )
    # Paging with the fake's long tokens, every criterion as the model shapes it.
    params = {
        "InstanceId": instance,
        "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": NOW - 80 * 86400, "EndTime": NOW + 86400},
        "MaxResults": 1,
        "SearchCriteria": {
            "AgentIds": ["agent-1"],
            "QueueIds": ["queue-1"],
            "InitiationMethods": ["INBOUND", "CALLBACK"],
            "Channels": ["VOICE"],
            "SearchableContactAttributes": {
                "Criteria": [{"Key": "tier", "Values": ["gold"]}],
                "MatchType": "MATCH_ALL",
            },
        },
        "Sort": {"FieldName": "INITIATION_TIMESTAMP", "Order": "DESCENDING"},
    }
    status, _, out = fake.call("SearchContacts", params)
    expect(status == 200, "SearchContacts accepts every SearchCriteria member botocore serialises")
    status, _, out = fake.call(
        "SearchContacts",
        {
            "InstanceId": instance,
            "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": 0, "EndTime": 86400 * 365},
        },
    )
    expect(
        status == 400 and out.get("Error", {}).get("Code") == "InvalidParameterException",
        "a time range over 92 days is an InvalidParameterException botocore recognises",
    )
    status, _, out = fake.call(
        "SearchContacts",
        {
            "InstanceId": instance,
            "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": 0, "EndTime": 86400},
            "NextToken": "forged",
        },
    )
    expect(
        status == 400 and out.get("Error", {}).get("Code") == "InvalidRequestException",
        "a token the fake never issued is an InvalidRequestException",
    )

    status, _, out = fake.call("DescribeContact", {"InstanceId": instance, "ContactId": contact})
    expect(status == 200 and out.get("Contact", {}).get("Id") == contact, "DescribeContact describes it")
    c = out.get("Contact", {})
    expect(
        c.get("AgentInfo", {}).get("Id") and c.get("QueueInfo", {}).get("Id")
        and c.get("CustomerEndpoint", {}).get("Address") and c.get("DisconnectReason"),
        "DescribeContact gives agent, queue, customer endpoint and disconnect reason",
    )
    status, _, out = fake.call(
        "GetContactAttributes", {"InstanceId": instance, "InitialContactId": contact}
    )
    expect(status == 200 and isinstance(out.get("Attributes"), dict), "GetContactAttributes answers a map")

    # Long tokens: page through one contact per page.
    seen, token, pages = [], None, 0
    while pages < 10:
        p = {
            "InstanceId": instance,
            "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": NOW - 80 * 86400, "EndTime": NOW + 86400},
            "MaxResults": 1,
        }
        if token:
            p["NextToken"] = token
        status, _, out = fake.call("SearchContacts", p)
        pages += 1
        seen += [x["Id"] for x in out.get("Contacts", [])]
        token = out.get("NextToken")
        if token:
            expect(len(token) >= 20000, f"the NextToken is {len(token)} characters (LargeNextToken)")
        if not token:
            break
    expect(contact in seen, "paging with long tokens reaches the contact")
    expect(out.get("TotalCount") == len(seen), "TotalCount is the number of contacts paged through")


    if failures:
        print(f"{len(failures)} problems")
        sys.exit(1)
    print("the Connect fake matches botocore's model")


if __name__ == "__main__":
    main()
