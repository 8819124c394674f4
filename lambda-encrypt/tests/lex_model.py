"""Validates Lambda answers against botocore's Lex V2 runtime model.

    python lex_model.py ANSWERS.json

ANSWERS.json is a list of {"name": ..., "answer": {...}} written by the Rust
test `answers_validate_against_botocore`. Each answer's `sessionState` is
checked against the `SessionState` shape and its `messages` against the
`Messages` shape of `PutSession` (lexv2-runtime), with botocore's own
ParamValidator. botocore does not check enums, string maxima or patterns, so
this script checks those from the same model too.

A slot set to null clears it. Lex accepts that in Lambda answers (its own
events show unfilled slots as null) but PutSession's model has no null, so
null slot values are set aside before validation and counted.

Exit 0 when every answer validates; otherwise one line per problem, exit 1.
"""

import json
import re
import sys

import botocore.session
from botocore.validate import ParamValidator


def extra_checks(value, shape, path, problems):
    """Enum, max length and pattern checks that ParamValidator leaves out."""
    if value is None:
        return
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']}")
        if "pattern" in meta and not re.search(meta["pattern"], value):
            problems.append(f"{path}: does not match {meta['pattern']}")
    elif kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                extra_checks(value[name], member, f"{path}.{name}", problems)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: more than {meta['max']} items")
        for i, item in enumerate(value):
            extra_checks(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            extra_checks(v, shape.value, f"{path}.{k}", problems)


def lex_rules(answer, problems):
    """What the Lex V2 developer guide says a code hook's answer must hold."""
    state = answer.get("sessionState") or {}
    action = (state.get("dialogAction") or {}).get("type")
    intent = state.get("intent") or {}
    if action is None:
        problems.append("sessionState.dialogAction.type is missing")
    if action == "ElicitSlot":
        slot = state["dialogAction"].get("slotToElicit")
        if not slot:
            problems.append("ElicitSlot without slotToElicit")
        elif slot not in (intent.get("slots") or {}):
            problems.append(f"ElicitSlot names {slot!r}, which the intent does not have")
    if action == "Close" and intent.get("state") not in ("Failed", "Fulfilled", "InProgress"):
        problems.append(f"Close with intent state {intent.get('state')!r}")
    if action in ("Close", "ElicitSlot", "Delegate") and not intent.get("name"):
        problems.append(f"{action} without an intent name")


def main():
    model = botocore.session.get_session().get_service_model("lexv2-runtime")
    put_session = model.operation_model("PutSession").input_shape
    state_shape = put_session.members["sessionState"]
    messages_shape = put_session.members["messages"]
    validator = ParamValidator()

    with open(sys.argv[1], encoding="utf-8") as f:
        answers = json.load(f)
    failures = 0
    nulls = 0
    for entry in answers:
        name, answer = entry["name"], entry["answer"]
        problems = []
        unknown = set(answer) - {"sessionState", "messages", "requestAttributes"}
        if unknown:
            problems.append(f"unknown top-level keys {sorted(unknown)}")
        state = json.loads(json.dumps(answer.get("sessionState")))
        slots = ((state or {}).get("intent") or {}).get("slots")
        if isinstance(slots, dict):
            for k in [k for k, v in slots.items() if v is None]:
                del slots[k]
                nulls += 1
        if state is None:
            problems.append("sessionState is missing")
        else:
            report = validator.validate(state, state_shape)
            if report.has_errors():
                problems.append(report.generate_report())
            extra_checks(state, state_shape, "sessionState", problems)
        if "messages" in answer:
            report = validator.validate(answer["messages"], messages_shape)
            if report.has_errors():
                problems.append(report.generate_report())
            extra_checks(answer["messages"], messages_shape, "messages", problems)
        lex_rules(answer, problems)
        if problems:
            failures += 1
            for p in problems:
                print(f"{name}: {p}")
    print(
        f"lexv2-runtime model (botocore {botocore.__version__}): "
        f"{len(answers) - failures} of {len(answers)} answers valid, "
        f"{nulls} cleared slots set aside"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
