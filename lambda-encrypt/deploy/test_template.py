"""Conformance test of the capture deploy template.

Checks that template.yaml would capture a real caller's card: the bot, the
Connect flow inside it, the keys and the console's rights. Run it with the
Python of the test venv (cfn-lint provides the CloudFormation YAML decoder):

    "$venv/bin/python" -m unittest -v lambda-encrypt/deploy/test_template.py

CALLVAULT_TEMPLATE=<path> checks another copy of the template instead.
"""

import hashlib
import json
import os
import re
import unittest

from cfnlint.decode import cfn_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS_RS = os.path.join(HERE, "..", "src", "fields.rs")
WALKTHROUGH = os.path.join(HERE, "..", "..", "docs", "capture-walkthrough.md")

INTENT = "CapturePaymentDetails"
CONTEXT_KEYS = {"purpose", "contactId", "field", "aws-crypto-public-key"}
PURPOSE = "callvault/caller-input"
CARD_IDENTIFIER = "arn:aws:dataprotection::aws:data-identifier/CreditCardNumber"

# Longest and shortest digit counts each validator of lambda-encrypt accepts
# (lambda-encrypt/src/validate.rs).
VALIDATOR_DIGITS = {"card": (13, 19), "card16": (16, 16), "zip5": (5, 5), "zip": (5, 9)}

# Flow Language (Version 2019-10-30): the action types this flow uses, the
# parameters each documents and the error types each can take.
FLOW_ACTIONS = {
    "UpdateFlowLoggingBehavior": ({"FlowLoggingBehavior"}, set()),
    # UpdateContactRecordingBehavior is superseded for new or edited flows:
    # it is deliberately not listed, so a flow that uses it fails.
    "UpdateContactRecordingAndAnalyticsBehavior": ({"VoiceBehavior"}, {"NoMatchingError", "ChannelMismatch"}),
    "GetParticipantInput": (
        {"PromptId", "Text", "SSML", "Media", "StoreInput", "InputEncryption", "InputTimeLimitSeconds",
         "DTMFConfiguration", "InputValidation"},
        {"NoMatchingError", "NoMatchingCondition", "InputTimeLimitExceeded", "InvalidPhoneNumber"},
    ),
    "ConnectParticipantWithLexBot": (
        {"PromptId", "Text", "SSML", "Media", "LexV2Bot", "LexBot", "LexSessionAttributes",
         "LexInitilizationData", "LexTimeoutSeconds"},
        {"InputTimeLimitExceeded", "NoMatchingError", "NoMatchingCondition"},
    ),
    "UpdateContactAttributes": ({"Attributes", "TargetContact"}, {"NoMatchingError"}),
    "Compare": ({"ComparisonValue"}, {"NoMatchingCondition"}),
    "MessageParticipant": ({"PromptId", "Text", "SSML", "Media"}, {"NoMatchingError"}),
    "DisconnectParticipant": (set(), set()),
}
LEX = "ConnectParticipantWithLexBot"
RECORDING = "UpdateContactRecordingAndAnalyticsBehavior"
STORE_INPUT = "GetParticipantInput"
# What the keypad flow is checked with (the parameters' shapes, not real keys).
SAMPLE_KEY_ID = "4cdb826a-24c9-443d-b78b-327c817073ce"
SAMPLE_CERTIFICATE = "-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIU\\nAbC+/9=\\n-----END CERTIFICATE-----"
IDENTIFIER_FORBIDDEN = set("%:(\\/)=$,;[]{}")


def plain(node):
    """cfn-lint's decoded nodes as plain dicts, lists and strings."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def template_path():
    return os.environ.get("CALLVAULT_TEMPLATE") or os.path.join(HERE, "template.yaml")


def load_template():
    return plain(cfn_yaml.load(template_path()))


def condition_true(template, name, params):
    return evaluate(template, template["Conditions"][name], params)


def evaluate(template, expr, params):
    """Evaluates a condition expression for the given parameter values."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Fn::Equals":
            a, b = (resolve(template, x, params) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Or":
            return any(evaluate(template, x, params) for x in arg)
        if fn == "Fn::And":
            return all(evaluate(template, x, params) for x in arg)
        if fn == "Fn::Not":
            return not evaluate(template, arg[0], params)
        if fn == "Condition":
            return condition_true(template, arg, params)
    raise AssertionError(f"unsupported condition expression {expr!r}")


def resolve(template, value, params):
    """Resolves Fn::If and Ref to parameters; leaves other intrinsics as they are."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            cond, yes, no = value["Fn::If"]
            branch = yes if condition_true(template, cond, params) else no
            return resolve(template, branch, params)
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        return {k: resolve(template, v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(template, v, params) for v in value]
    return value


def parameter_sets(template):
    """One parameter set per allowed Fields value (the only template choice the bot follows)."""
    fields = template["Parameters"]["Fields"]
    values = fields.get("AllowedValues") or [fields["Default"]]
    return [{"Fields": v, "FlowLogGroupExists": "false", "ConnectInputKeyId": SAMPLE_KEY_ID,
             "ConnectInputCertificate": SAMPLE_CERTIFICATE, "KeypadAttribute": "keypad_card"} for v in values]


def field_validators(fields_value):
    out = {}
    for item in fields_value.split(","):
        name, validator = item.split(":", 1)
        out[name] = validator
    return out


def bot_locale(template):
    return template["Resources"]["CaptureBot"]["Properties"]["BotLocales"][0]


def capture_intent(template):
    intents = [i for i in bot_locale(template)["Intents"] if i["Name"] == INTENT]
    assert intents, f"the bot has no intent {INTENT}"
    return intents[0]


def slots(template):
    return capture_intent(template)["Slots"]


def slot_names(template):
    return [s["Name"] for s in slots(template)]


def bot_definition_digest(template):
    """What the bot versions' logical IDs must end with: the bot's definition."""
    props = template["Resources"]["CaptureBot"]["Properties"]
    text = json.dumps(props, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def flow(template, params, resource="CaptureFlow"):
    """The Connect flow JSON out of the ContactFlow's Fn::Sub, variables filled in."""
    content = template["Resources"][resource]["Properties"]["Content"]
    assert isinstance(content, dict) and "Fn::Sub" in content, "the flow Content is not an Fn::Sub"
    body, variables = content["Fn::Sub"]
    variables = resolve(template, variables, params)

    def sub(m):
        name = m.group(1)
        if name not in variables:
            raise AssertionError(f"the flow's Fn::Sub uses ${{{name}}}, which it does not define")
        value = variables[name]
        if isinstance(value, dict):  # an ARN from GetAtt: any placeholder will do
            return f"arn:aws:lex:us-east-1:111122223333:bot-alias/BOTID/{name}"
        return str(value)

    text = re.sub(r"\$\{([^}!]+)\}", sub, body)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise AssertionError(f"the flow Content is not valid JSON: {e}") from e


def transitions(action):
    """Every (label, next action) an action can take."""
    t = action.get("Transitions") or {}
    out = []
    if "NextAction" in t:
        out.append(("NextAction", t["NextAction"]))
    for c in t.get("Conditions", []):
        out.append((f"Condition {c['Condition']['Operands']}", c["NextAction"]))
    for e in t.get("Errors", []):
        out.append((f"Error {e['ErrorType']}", e["NextAction"]))
    return out


def paths_from(actions, start, stop):
    """Every path (list of identifiers) from start until an action for which
    stop(action) is true, or a DisconnectParticipant, or a loop."""
    out = []

    def walk(ident, path):
        path = path + [ident]
        action = actions[ident]
        if action["Type"] == "DisconnectParticipant" or (len(path) > 1 and stop(action)):
            out.append(path)
            return
        nexts = {n for _, n in transitions(action)}
        if not nexts:
            out.append(path)
        for n in sorted(nexts):
            if n in path:
                out.append(path + [n])
            else:
                walk(n, path)

    walk(start, [])
    return out


def stored_from_lex(action):
    """The contact attributes an UpdateContactAttributes copies from Lex session attributes."""
    if action["Type"] != "UpdateContactAttributes":
        return {}
    attrs = action["Parameters"].get("Attributes", {})
    return {k: v for k, v in attrs.items() if isinstance(v, str) and v.startswith("$.Lex.SessionAttributes.")}


def statements(policy):
    st = policy["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(v):
    return v if isinstance(v, list) else [v]


def principal_of(statement):
    """Who a statement grants: its Principal, or for Principal "*" the
    principal its aws:PrincipalArn condition binds it to."""
    principal = statement.get("Principal", {})
    aws = principal.get("AWS") if isinstance(principal, dict) else principal
    if aws == "*":
        return statement.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn", "*")
    return aws


class TemplateCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load_template()
        cls.params = parameter_sets(cls.t)
        cls.flows = [(p, flow(cls.t, p)) for p in cls.params]
        cls.keypad_flows = [(p, flow(cls.t, p, "KeypadCaptureFlow")) for p in cls.params]

    def resource(self, name, type_):
        r = self.t["Resources"].get(name)
        self.assertIsNotNone(r, f"the template has no resource {name}")
        self.assertEqual(r["Type"], type_, f"{name} should be a {type_}")
        return r


class TheBot(TemplateCase):
    def test_the_first_slot_has_a_slot_only_utterance(self):
        intent = capture_intent(self.t)
        first = min(intent["SlotPriorities"], key=lambda p: p["Priority"])["SlotName"]
        utterances = [u["Utterance"].strip() for u in intent.get("SampleUtterances", [])]
        self.assertIn("{" + first + "}", utterances,
                      f"no slot-only sample utterance for the first slot {first}: a caller who answers "
                      "the prompt with the bare number would not choose the intent")
        natural = [u for u in utterances if "{" + first + "}" in u and u != "{" + first + "}"]
        self.assertGreaterEqual(len(natural), 2,
                                f"fewer than two natural utterances carry {{{first}}} (\"my card number is ...\")")

    def test_every_slot_prompt_asks_a_question(self):
        for p in self.params:
            for slot in slots(self.t):
                spec = resolve(self.t, slot["ValueElicitationSetting"]["PromptSpecification"], p)
                for group in spec["MessageGroupsList"]:
                    text = group["Message"]["PlainTextMessage"]["Value"]
                    self.assertIn("?", text, f"slot {slot['Name']}'s prompt asks no question (Fields={p['Fields']}): {text!r}")

    def test_every_slot_has_audio_and_keypad_timing_for_each_attempt(self):
        for p in self.params:
            validators = field_validators(p["Fields"])
            for slot in slots(self.t):
                name = slot["Name"]
                spec = resolve(self.t, slot["ValueElicitationSetting"]["PromptSpecification"], p)
                attempts = spec.get("PromptAttemptsSpecification")
                self.assertTrue(attempts, f"slot {name} has no PromptAttemptsSpecification")
                want = {"Initial"} | {f"Retry{i}" for i in range(1, spec["MaxRetries"] + 1)}
                self.assertEqual(set(attempts), want,
                                 f"slot {name}: PromptAttemptsSpecification should cover exactly {sorted(want)}")
                lo, hi = VALIDATOR_DIGITS[validators[name]]
                for attempt, a in attempts.items():
                    where = f"slot {name} {attempt} (Fields={p['Fields']})"
                    self.assertEqual(a.get("AllowedInputTypes"), {"AllowAudioInput": True, "AllowDTMFInput": True},
                                     f"{where}: both voice and keypad must be allowed")
                    io = a.get("AudioAndDTMFInputSpecification")
                    self.assertTrue(io, f"{where}: no AudioAndDTMFInputSpecification")
                    self.assertGreaterEqual(io["StartTimeoutMs"], 4000, f"{where}: StartTimeoutMs leaves no time to find the card")
                    audio, dtmf = io.get("AudioSpecification"), io.get("DTMFSpecification")
                    self.assertTrue(audio, f"{where}: no AudioSpecification")
                    self.assertTrue(dtmf, f"{where}: no DTMFSpecification")
                    self.assertLessEqual(audio["MaxLengthMs"], 15000,
                                         f"{where}: MaxLengthMs over 15000 sends the Connect contact down the error branch")
                    if hi > 9:  # a card, read in groups of four with pauses
                        self.assertGreaterEqual(audio["EndTimeoutMs"], 1500,
                                                f"{where}: EndTimeoutMs {audio['EndTimeoutMs']} cuts a card read in groups")
                        self.assertGreaterEqual(audio["MaxLengthMs"], 12000, f"{where}: MaxLengthMs too short for a spoken card")
                    else:
                        self.assertGreaterEqual(audio["MaxLengthMs"], 6000, f"{where}: MaxLengthMs too short for a spoken ZIP")
                    self.assertEqual(dtmf["EndCharacter"], "#", f"{where}: the keypad should end with #")
                    self.assertNotEqual(dtmf["DeletionCharacter"], "#", f"{where}: # cannot both end and clear")
                    self.assertGreaterEqual(dtmf["EndTimeoutMs"], 3000, f"{where}: keypad EndTimeoutMs too short")
                    self.assertEqual(int(dtmf["MaxLength"]), hi,
                                     f"{where}: keypad MaxLength {dtmf['MaxLength']} should be the longest valid {validators[name]} ({hi} digits)")

    def test_every_slot_runs_the_code_hook_after_capture(self):
        intent = capture_intent(self.t)
        self.assertTrue(intent.get("DialogCodeHook", {}).get("Enabled"), "the intent's dialog code hook is off")
        self.assertTrue(intent.get("FulfillmentCodeHook", {}).get("Enabled"), "the intent's fulfillment code hook is off")
        for slot in slots(self.t):
            hook = slot["ValueElicitationSetting"].get("SlotCaptureSetting", {}).get("CodeHook")
            self.assertTrue(hook, f"slot {slot['Name']} has no SlotCaptureSetting.CodeHook")
            self.assertIs(hook.get("IsActive"), True, f"slot {slot['Name']}: CodeHook.IsActive is not true")
            self.assertIs(hook.get("EnableCodeHookInvocation"), True,
                          f"slot {slot['Name']}: CodeHook.EnableCodeHookInvocation is not true")
            post = hook.get("PostCodeHookSpecification")
            self.assertIsInstance(post, dict, f"slot {slot['Name']}: CodeHook has no PostCodeHookSpecification")
            for step in ("FailureNextStep", "TimeoutNextStep"):
                self.assertIn(step, post, f"slot {slot['Name']}: nothing says what happens on code hook {step}")

    def test_slots_are_obfuscated(self):
        for slot in slots(self.t):
            self.assertEqual(slot.get("ObfuscationSetting", {}).get("ObfuscationSettingType"), "DefaultObfuscation",
                             f"slot {slot['Name']} is not obfuscated in Lex logs")

    def test_slot_regexes_accept_exactly_what_the_validators_accept(self):
        types = {st["Name"]: st for st in bot_locale(self.t)["SlotTypes"]}
        for p in self.params:
            validators = field_validators(p["Fields"])
            self.assertEqual(set(validators), set(slot_names(self.t)),
                             f"Fields={p['Fields']} names fields the bot has no slot for, or the reverse")
            for slot in slots(self.t):
                name = slot["Name"]
                vtype = resolve(self.t, types[slot["SlotTypeName"]], p)
                pattern = vtype["ValueSelectionSetting"]["RegexFilter"]["Pattern"]
                where = f"slot {name} ({validators[name]}, Fields={p['Fields']}), regex {pattern!r}"
                self.assertNotRegex(pattern.replace("\\u", ""), r"(?<!\\)[.*+]|\{\d+,\}",
                                    f"{where}: Lex refuses wildcards and unbounded repeats")
                rx = re.compile(pattern)
                lo, hi = VALIDATOR_DIGITS[validators[name]]
                for n in range(1, 25):
                    digits = ("4111111111111111111111111")[:n]
                    valid = lo <= n <= hi and (validators[name] != "zip" or n in (5, 9))
                    self.assertEqual(bool(rx.fullmatch(digits)), valid,
                                     f"{where}: {n} digits {'rejected' if valid else 'accepted'}, "
                                     f"the validator {'accepts' if valid else 'refuses'} them")
                if validators[name] == "zip":
                    self.assertTrue(rx.fullmatch("12345-6789"), f"{where}: refuses ZIP+4 written with a hyphen")

    def test_the_default_fields_are_the_lambdas_default(self):
        with open(FIELDS_RS) as f:
            m = re.search(r'pub const DEFAULT_FIELDS: &str = "([^"]+)"', f.read())
        self.assertTrue(m, "DEFAULT_FIELDS not found in lambda-encrypt/src/fields.rs")
        self.assertEqual(self.t["Parameters"]["Fields"]["Default"], m.group(1),
                         "the template's default Fields differs from the Lambda's DEFAULT_FIELDS")
        env = self.t["Resources"]["EncryptFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env.get("CALLVAULT_FIELDS"), {"Ref": "Fields"},
                         "the Lambda's CALLVAULT_FIELDS is not the Fields parameter the bot follows")

    def test_the_test_alias_may_invoke_the_code_hook(self):
        bot = self.t["Resources"]["CaptureBot"]["Properties"]
        hooks = [s["BotAliasLocaleSetting"].get("CodeHookSpecification")
                 for s in bot.get("TestBotAliasSettings", {}).get("BotAliasLocaleSettings", [])]
        if not any(hooks):
            return  # no hook on the test alias: nothing to permit
        perms = [r["Properties"] for r in self.t["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
        test_alias = [p for p in perms
                      if p.get("Principal") == "lexv2.amazonaws.com"
                      and p.get("FunctionName") == {"Fn::GetAtt": ["EncryptFunction", "Arn"]}
                      and "bot-alias/${CaptureBot}/TSTALIASID" in json.dumps(p.get("SourceArn"))]
        self.assertTrue(test_alias, "the test alias (TSTALIASID) calls the code hook but no Lambda::Permission lets it: "
                                    "\"Test\" in the Lex console would fail")
        live = [p for p in perms if p.get("SourceArn") == {"Fn::GetAtt": ["CaptureBotAlias", "Arn"]}]
        self.assertTrue(live, "the live alias may not invoke the code hook")

    def test_the_first_answer_reaches_the_code_hook(self):
        # Lex calls the Lambda on the first turn only with an active
        # initial-response code hook whose next step invokes it.
        setting = capture_intent(self.t).get("InitialResponseSetting", {})
        hook = setting.get("CodeHook", {})
        self.assertIs(hook.get("IsActive"), True, "the intent has no active initial-response code hook")
        self.assertIs(hook.get("EnableCodeHookInvocation"), True, "the initial-response code hook is not invoked")
        self.assertEqual(setting.get("NextStep", {}).get("DialogAction", {}).get("Type"), "InvokeDialogCodeHook",
                         "the initial response's next step does not invoke the dialog code hook")

    def test_code_hook_failures_end_silently(self):
        # The flow says what happens next (keypad retry or one goodbye); a
        # bot-side apology before it is a second apology.
        intent = capture_intent(self.t)
        posts = [s["ValueElicitationSetting"]["SlotCaptureSetting"]["CodeHook"]["PostCodeHookSpecification"]
                 for s in slots(self.t)]
        posts.append(intent.get("InitialResponseSetting", {}).get("CodeHook", {}).get("PostCodeHookSpecification", {}))
        for post in posts:
            for key in ("FailureResponse", "TimeoutResponse"):
                self.assertNotIn(key, post, f"a code hook speaks on failure ({key}) before the flow does")

    def test_a_bot_change_publishes_a_new_version_the_alias_uses(self):
        versions = {name: r for name, r in self.t["Resources"].items() if r["Type"] == "AWS::Lex::BotVersion"}
        digest = bot_definition_digest(self.t)
        for name, r in versions.items():
            self.assertTrue(name.endswith(digest),
                            f"bot version {name} does not end with the bot definition's digest {digest}: "
                            "the bot changed but no new version would be published")
            self.assertEqual(r["Properties"]["BotVersionLocaleSpecification"][0]["BotVersionLocaleDetails"]["SourceBotVersion"],
                             "DRAFT")
        alias = self.t["Resources"]["CaptureBotAlias"]["Properties"]["BotVersion"]
        for p in self.params:
            live = [n for n, r in versions.items() if "Condition" in r and condition_true(self.t, r["Condition"], p)]
            self.assertEqual(len(live), 1, f"Fields={p['Fields']}: {len(live)} bot versions exist, not one")
            self.assertEqual(resolve(self.t, alias, p), {"Fn::GetAtt": [live[0], "BotVersion"]},
                             f"Fields={p['Fields']}: the live alias does not use the version made for it")
        self.assertEqual(len(versions), len(self.params), "one bot version per Fields choice")


class TheFlow(TemplateCase):
    def actions(self, f):
        return {a["Identifier"]: a for a in f["Actions"]}

    def lex_blocks(self, f):
        return [a for a in f["Actions"] if a["Type"] == LEX]

    def test_the_flow_is_valid_flow_language(self):
        for p, f in self.flows + self.keypad_flows:
            self.assertEqual(f.get("Version"), "2019-10-30", "the flow's Version is not 2019-10-30")
            idents = [a["Identifier"] for a in f["Actions"]]
            self.assertEqual(len(idents), len(set(idents)), "flow action identifiers are not unique")
            actions = self.actions(f)
            self.assertIn(f.get("StartAction"), actions, "StartAction names no action")
            for a in f["Actions"]:
                ident = a["Identifier"]
                self.assertLessEqual(len(ident), 50, f"identifier {ident} is longer than 50 characters")
                self.assertFalse(set(ident) & IDENTIFIER_FORBIDDEN, f"identifier {ident} has a character the Flow language forbids")
                self.assertIn(a["Type"], FLOW_ACTIONS, f"action {ident}: type {a['Type']} is not one this flow may use")
                allowed_params, allowed_errors = FLOW_ACTIONS[a["Type"]]
                extra = set(a.get("Parameters", {})) - allowed_params
                self.assertFalse(extra, f"action {ident} ({a['Type']}) has undocumented parameters {sorted(extra)}")
                for e in a.get("Transitions", {}).get("Errors", []):
                    self.assertIn(e["ErrorType"], allowed_errors, f"action {ident} ({a['Type']}) cannot take error {e['ErrorType']}")
                for label, n in transitions(a):
                    self.assertIn(n, actions, f"action {ident} {label} goes to {n}, which does not exist")
                if a["Type"] not in ("DisconnectParticipant",):
                    self.assertIn("NextAction", a.get("Transitions", {}), f"action {ident} has no NextAction")
            reached = {x for path in paths_from(actions, f["StartAction"], lambda a: False) for x in path}
            self.assertEqual(set(actions) - reached, set(), "actions that no path from StartAction reaches")
            self.assertTrue(any(a["Type"] == "DisconnectParticipant" for a in f["Actions"]), "the flow never disconnects")

    def test_every_lex_prompt_asks_a_question(self):
        for p, f in self.flows:
            for a in self.lex_blocks(f):
                text = a["Parameters"].get("Text", "")
                self.assertIn("?", text, f"Lex block {a['Identifier']}'s prompt asks no question: {text!r}")

    def test_every_lex_block_has_every_exit(self):
        for p, f in self.flows:
            for a in self.lex_blocks(f):
                t = a["Transitions"]
                errors = {e["ErrorType"] for e in t.get("Errors", [])}
                missing = FLOW_ACTIONS[LEX][1] - errors
                self.assertFalse(missing, f"Lex block {a['Identifier']} does not route {sorted(missing)}")
                intents = {c["Condition"]["Operands"][0] for c in t.get("Conditions", [])}
                self.assertIn(INTENT, intents, f"Lex block {a['Identifier']} has no branch for {INTENT}")

    def test_every_exit_of_every_lex_block_stores_before_the_call_moves_on(self):
        want = set()
        for name in slot_names(self.t):
            want |= {name, f"{name}_status"}
        for p, f in self.flows:
            actions = self.actions(f)
            for lex in self.lex_blocks(f):
                for label, first in transitions(lex):
                    for path in paths_from(actions, first, lambda a: a["Type"] == LEX) if actions[first]["Type"] != LEX else [[first]]:
                        stored = set()
                        for ident in path:
                            if actions[ident]["Type"] in ("DisconnectParticipant", LEX):
                                break
                            stored |= set(stored_from_lex(actions[ident]))
                        self.assertEqual(want - stored, set(),
                                         f"from Lex block {lex['Identifier']} ({label}) the path {' -> '.join(path)} "
                                         f"does not store {sorted(want - stored)} before it moves on")

    def test_each_store_step_copies_one_attribute(self):
        # UpdateContactAttributes sets all of its attributes or none: a ZIP
        # that Lex never returned must not take a stored card with it.
        for p, f in self.flows:
            for a in f["Actions"]:
                stored = stored_from_lex(a)
                if stored:
                    self.assertEqual(len(a["Parameters"]["Attributes"]), 1,
                                     f"store step {a['Identifier']} copies {sorted(a['Parameters']['Attributes'])} at once; "
                                     "one missing value would drop them all")
                    for k, v in stored.items():
                        self.assertEqual(v, f"$.Lex.SessionAttributes.{k}", f"store step {a['Identifier']} copies {v} into {k}")
                    error_next = {n for l, n in transitions(a) if l.startswith("Error")}
                    self.assertEqual(error_next, {a["Transitions"]["NextAction"]},
                                     f"store step {a['Identifier']}: its error branch must go on to the same next step")

    def test_lex_gets_the_contact_id_and_input_timing(self):
        for p, f in self.flows:
            for a in self.lex_blocks(f):
                attrs = a["Parameters"].get("LexSessionAttributes", {})
                ident = a["Identifier"]
                self.assertEqual(attrs.get("contactId"), "$.ContactId", f"Lex block {ident} does not pass contactId = $.ContactId")
                self.assertEqual(attrs.get("x-amz-lex:dtmf:end-character:*:*"), "#", f"Lex block {ident}: keypad input does not end with #")
                self.assertIn("x-amz-lex:dtmf:end-timeout-ms:*:*", attrs, f"Lex block {ident} sets no keypad end timeout")
                self.assertIn("x-amz-lex:dtmf:max-length:*:*", attrs, f"Lex block {ident} sets no keypad length")
                audio = [k for k in attrs if k.startswith("x-amz-lex:audio:")]
                self.assertTrue(audio, f"Lex block {ident} sets no x-amz-lex:audio:* timing")
                for k in audio:
                    if k.startswith("x-amz-lex:audio:max-length-ms:"):
                        self.assertLessEqual(int(attrs[k]), 15000, f"Lex block {ident}: {k} over 15000 ms is an error in Connect")
                for k in attrs:
                    if k.startswith("x-amz-lex:"):
                        # x-amz-lex:<type>:<behaviour>:<intent>:<slot>, or
                        # x-amz-lex:<behaviour>:<intent>:<slot> for allow-*.
                        parts = k.split(":")
                        # The Lex V2 guide's predefined attributes only: an
                        # undocumented one is silently ignored by Lex.
                        self.assertIn(parts[1], ("audio", "dtmf", "text", "allow-interrupt"),
                                      f"Lex block {ident}: {k} is not a documented Lex V2 session attribute")
                        size = 4 if parts[1].startswith("allow-") else 5
                        self.assertEqual(len(parts), size, f"Lex block {ident}: {k} does not end in :<intent>:<slot>")
                        self.assertIn(parts[-2], ("*", INTENT), f"Lex block {ident}: {k} names an unknown intent")
                        self.assertIn(parts[-1], ["*"] + slot_names(self.t), f"Lex block {ident}: {k} names an unknown slot")

    def keypad_only(self, lex):
        attrs = lex["Parameters"].get("LexSessionAttributes", {})
        # Lex V2 has no session attribute that turns speech off: the Lambda
        # refuses a value that did not arrive as DTMF when this is set.
        return attrs.get("callvault_keypad_only") == "true"

    def test_a_keypad_only_retry_follows_when_voice_fails(self):
        for p, f in self.flows:
            actions = self.actions(f)
            voice = [a for a in self.lex_blocks(f) if not self.keypad_only(a)]
            keypad = {a["Identifier"] for a in self.lex_blocks(f) if self.keypad_only(a)}
            self.assertTrue(voice, "no Lex block takes voice")
            self.assertTrue(keypad, "no Lex block sets callvault_keypad_only = true: there is no keypad-only retry")
            for lex in voice:
                for field in slot_names(self.t):
                    status = f"$.Attributes.{field}_status"
                    checks = [x for path in paths_from(actions, lex["Identifier"], lambda a: a["Type"] == LEX and a is not lex)
                              for x in path if actions[x]["Type"] == "Compare"
                              and actions[x]["Parameters"]["ComparisonValue"] == status]
                    self.assertTrue(checks, f"after Lex block {lex['Identifier']} nothing checks {status}")
                    for c in set(checks):
                        failing = [n for l, n in transitions(actions[c]) if "captured" not in l]
                        for n in failing:
                            ends = paths_from(actions, n, lambda a: a["Type"] == LEX)
                            self.assertTrue(all(path[-1] in keypad for path in ends),
                                            f"when {status} is not captured, {c} -> {n} can end the call without the keypad retry")

    def test_logging_is_paused_around_every_lex_block(self):
        reasons = self.t.get("Metadata", {}).get("callvault", {}).get("FlowReasons", {})
        for p, f in self.flows + self.keypad_flows:
            actions = self.actions(f)
            for path in paths_from(actions, f["StartAction"], lambda a: False):
                logging = None
                for i, ident in enumerate(path):
                    a = actions[ident]
                    if a["Type"] == "UpdateFlowLoggingBehavior":
                        logging = a["Parameters"]["FlowLoggingBehavior"]
                    if a["Type"] in (LEX, STORE_INPUT):
                        self.assertEqual(logging, "Disabled",
                                         f"flow logging is {logging or 'not set'} when Lex block {ident} runs "
                                         f"(path {' -> '.join(path[:i + 1])})")
                    if a["Type"] == "DisconnectParticipant":
                        self.assertEqual(logging, "Enabled", f"flow logging is never resumed on path {' -> '.join(path)}")
            for a in f["Actions"]:
                if a["Type"] in ("UpdateFlowLoggingBehavior", RECORDING):
                    self.assertTrue(str(reasons.get(a["Identifier"], "")).strip(),
                                    f"{a['Identifier']} has no reason in Metadata.callvault.FlowReasons")

    def test_recording_and_analytics_are_off_during_capture(self):
        for p, f in self.flows + self.keypad_flows:
            actions = self.actions(f)
            for path in paths_from(actions, f["StartAction"], lambda a: False):
                off = False
                for ident in path:
                    a = actions[ident]
                    if a["Type"] == RECORDING:
                        vb = a["Parameters"].get("VoiceBehavior", {})
                        rb = vb.get("VoiceRecordingBehavior", {})
                        off = (rb.get("RecordedParticipants") == []
                               and rb.get("IVRRecordingBehavior") == "Disabled"
                               and str(vb.get("VoiceAnalyticsBehavior", {}).get("Enabled", "False")) == "False"
                               and not a["Parameters"].get("ScreenRecordingBehavior"))
                    if a["Type"] in (LEX, STORE_INPUT):
                        self.assertTrue(off, f"recording, IVR recording or analytics may be on when Lex block {ident} runs "
                                             f"(path {' -> '.join(path)})")

    def test_the_flows_do_not_apologise_after_the_code_hook(self):
        # The Lambda's failed close already says sorry once.
        for p, f in self.flows + self.keypad_flows:
            for a in f["Actions"]:
                if a["Type"] == "MessageParticipant":
                    self.assertNotIn("sorry", a["Parameters"].get("Text", "").lower(),
                                     f"{a['Identifier']} apologises after the bot did")

    def test_what_star_does_is_described_as_lex_does_it(self):
        # In Lex the deletion character clears the digits and ends the input.
        for path in (template_path(), WALKTHROUGH):
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as fh:
                text = fh.read().lower()
            for wrong in ("start over", "starts over", "start again"):
                self.assertFalse(wrong in text, f"{os.path.basename(path)} says * makes the caller {wrong}")

    def test_each_lex_block_gets_back_what_may_already_be_stored(self):
        # A field not known to have failed on the way to a Lex block may be
        # stored already: the block must pass it back, or Lex overwrites it.
        for p, f in self.flows:
            actions = self.actions(f)
            start = f["StartAction"]
            for block in self.lex_blocks(f)[1:]:
                paths = [path for path in paths_from(actions, start, lambda a, b=block: a is b)
                         if path[-1] == block["Identifier"]]
                self.assertTrue(paths, f"no path reaches {block['Identifier']}")
                attrs = block["Parameters"].get("LexSessionAttributes", {})
                for field in slot_names(self.t):
                    status = f"$.Attributes.{field}_status"
                    for path in paths:
                        failed = any(
                            actions[x]["Type"] == "Compare" and actions[x]["Parameters"]["ComparisonValue"] == status
                            and any(n == path[i + 1] and "captured" not in l for l, n in transitions(actions[x]))
                            and not any(n == path[i + 1] and "captured" in l for l, n in transitions(actions[x]))
                            for i, x in enumerate(path[:-1]))
                        if failed:
                            continue
                        for key in (field, f"{field}_status"):
                            self.assertEqual(attrs.get(key), f"$.Attributes.{key}",
                                             f"{block['Identifier']} does not pass back {key} (path {' -> '.join(path)})")


class TheKeys(TemplateCase):
    def key_statements(self, key):
        return statements(self.resource(key, "AWS::KMS::Key")["Properties"]["KeyPolicy"])

    def test_the_field_key_policy_binds_both_roles_to_the_context(self):
        for role, action in (("EncryptRole", "kms:GenerateDataKey"), ("ConsoleRole", "kms:Decrypt")):
            grants = [s for s in self.key_statements("FieldKey")
                      if principal_of(s) == {"Fn::GetAtt": [role, "Arn"]} and action in as_list(s["Action"])]
            self.assertEqual(len(grants), 1, f"the field key policy should grant {role} {action} in one statement")
            s = grants[0]
            self.assertEqual(as_list(s["Action"]), [action], f"{role}'s {action} statement grants more: {s['Action']}")
            cond = s.get("Condition", {})
            self.assertEqual(cond.get("StringEquals", {}).get("kms:EncryptionContext:purpose"), PURPOSE,
                             f"{role}: no StringEquals kms:EncryptionContext:purpose = {PURPOSE}")
            keys = cond.get("ForAllValues:StringEquals", {}).get("kms:EncryptionContextKeys")
            self.assertEqual(set(as_list(keys or [])), CONTEXT_KEYS,
                             f"{role}: ForAllValues:StringEquals kms:EncryptionContextKeys should be exactly {sorted(CONTEXT_KEYS)}")
            null = cond.get("Null", {})
            for k in ("contactId", "field"):
                self.assertEqual(str(null.get(f"kms:EncryptionContext:{k}")).lower(), "false",
                                 f"{role}: no Null condition making the context key {k} required")

    def test_grants_to_the_stacks_roles_survive_iam_propagation(self):
        # KMS checks a Principal's existence when the policy is set; a role
        # made seconds earlier may not be visible yet. Conditions are not
        # looked up: every grant to a role of this stack binds it there, and
        # every "*" statement is bound to one principal of this account.
        for key in ("FieldKey", "CheckpointKey"):
            for st in self.key_statements(key):
                principal = st.get("Principal", {})
                aws = principal.get("AWS") if isinstance(principal, dict) else principal
                self.assertFalse(isinstance(aws, dict) and "Fn::GetAtt" in aws,
                                 f"{key} {st.get('Sid')}: names a role created by this stack as Principal")
                if aws == "*":
                    cond = st.get("Condition", {})
                    self.assertIn("Fn::GetAtt", json.dumps(cond.get("ArnEquals", {}).get("aws:PrincipalArn")),
                                  f"{key} {st.get('Sid')}: Principal * without an aws:PrincipalArn binding")
                    self.assertEqual(cond.get("StringEquals", {}).get("aws:PrincipalAccount"), {"Ref": "AWS::AccountId"},
                                     f"{key} {st.get('Sid')}: Principal * not limited to this account")

    def test_the_root_statement_enables_iam_for_administration_only(self):
        for key in ("FieldKey", "CheckpointKey"):
            for s in self.key_statements(key):
                if "root" in json.dumps(principal_of(s)):
                    acts = as_list(s["Action"])
                    for bad in ("kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:Sign"):
                        self.assertNotIn(bad, acts, f"{key}: the account root statement grants {bad}, so IAM policies could grant use")

    def test_the_lambda_only_creates_data_keys(self):
        enc = [s for key in ("FieldKey", "CheckpointKey") for s in self.key_statements(key)
               if "EncryptRole" in json.dumps(principal_of(s))]
        self.assertEqual(sorted(a for s in enc for a in as_list(s["Action"])), ["kms:GenerateDataKey"],
                         "the Lambda's role may do more with the keys than GenerateDataKey")
        role = self.t["Resources"]["EncryptRole"]["Properties"]
        self.assertNotIn("kms:", json.dumps(role.get("Policies", [])), "the Lambda's IAM policies mention KMS")

    def test_the_console_may_only_decrypt_and_read_the_field_key(self):
        acts = {a for s in self.key_statements("FieldKey") if "ConsoleRole" in json.dumps(principal_of(s))
                for a in as_list(s["Action"])}
        self.assertEqual(acts, {"kms:Decrypt", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"},
                         "the console's rights on the field key are not exactly decrypt plus preflight's reads")

    def test_the_checkpoint_key_is_an_ecc_signing_key_the_console_may_use(self):
        key = self.resource("CheckpointKey", "AWS::KMS::Key")["Properties"]
        self.assertEqual(key.get("KeySpec"), "ECC_NIST_P256", "the checkpoint key is not ECC_NIST_P256")
        self.assertEqual(key.get("KeyUsage"), "SIGN_VERIFY", "the checkpoint key is not SIGN_VERIFY")
        console = [s for s in self.key_statements("CheckpointKey") if principal_of(s) == {"Fn::GetAtt": ["ConsoleRole", "Arn"]}]
        acts = {a for s in console for a in as_list(s["Action"])}
        for need in ("kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"):
            self.assertIn(need, acts, f"the console may not {need} with the checkpoint key")
        self.assertFalse(acts - {"kms:Sign", "kms:GetPublicKey", "kms:DescribeKey", "kms:Verify"},
                         f"the console has more rights on the checkpoint key than signing needs: {sorted(acts)}")
        others = [s for s in self.key_statements("CheckpointKey")
                  if "root" not in json.dumps(principal_of(s)) and principal_of(s) != {"Fn::GetAtt": ["ConsoleRole", "Arn"]}]
        self.assertFalse(others, "someone besides the console may use the checkpoint key")


class TheConsole(TemplateCase):
    def role_statements(self):
        role = self.resource("ConsoleRole", "AWS::IAM::Role")["Properties"]
        return [s for pol in role.get("Policies", []) for s in statements(pol["PolicyDocument"])]

    def test_the_audit_log_group_keeps_a_year(self):
        g = self.resource("AuditLogGroup", "AWS::Logs::LogGroup")
        retention = resolve(self.t, g["Properties"].get("RetentionInDays"), {"AuditLogRetentionDays": None})
        if retention is None:
            retention = self.t["Parameters"]["AuditLogRetentionDays"]["Default"]
        self.assertIsNotNone(retention, "the audit log group has no retention")
        self.assertGreaterEqual(int(retention), 365, "the audit log group keeps less than a year")
        self.assertEqual(g.get("DeletionPolicy"), "Retain", "deleting the stack would delete the audit log")

    def test_the_console_role_has_exactly_the_rights_it_uses(self):
        granted = {}
        for s in self.role_statements():
            self.assertEqual(s.get("Effect"), "Allow")
            for a in as_list(s["Action"]):
                self.assertNotIn("*", a, f"the console role grants a wildcard action {a}")
                granted.setdefault(a, []).extend(as_list(s["Resource"]))
        expected = {
            # contacts and flow logs
            "connect:SearchContacts", "connect:DescribeContact", "connect:GetContactAttributes",
            "logs:FilterLogEvents",
            # agents and queues by name
            "connect:ListUsers", "connect:ListQueues",
            # preflight
            "connect:DescribeInstanceAttribute", "connect:ListBots",
            # audit shipping and audit verify --checkpoints
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents",
        }
        self.assertEqual(set(granted), expected,
                         f"the console role's IAM actions differ: extra {sorted(set(granted) - expected)}, "
                         f"missing {sorted(expected - set(granted))}")
        for a in ("connect:DescribeInstanceAttribute", "connect:ListBots", "connect:ListUsers", "connect:ListQueues"):
            self.assertEqual(granted[a], [{"Ref": "ConnectInstanceArn"}], f"{a} is not limited to the instance")
        for a in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"):
            self.assertTrue(granted[a] and all("${AuditLogGroup}" in json.dumps(r) for r in granted[a]),
                            f"{a} is not limited to the audit log group")
        for a in ("logs:DescribeLogStreams", "logs:GetLogEvents"):
            text = json.dumps(granted[a])
            self.assertIn("${AuditLogGroup}", text, f"{a} does not cover the audit log group")
            self.assertIn("/aws/connect/${ConnectInstanceAlias}", text, f"{a} does not cover the flow-log group")

    def test_outputs_name_the_console_settings(self):
        out = self.t["Outputs"]
        for name, setting, value in (
            ("ConsoleAuditLogGroup", "CALLVAULT_AUDIT_LOG_GROUP", {"Ref": "AuditLogGroup"}),
            ("ConsoleCheckpointKey", "CALLVAULT_CHECKPOINT_KEY", {"Fn::GetAtt": ["CheckpointKey", "Arn"]}),
            ("ConsoleKeyring", "CALLVAULT_KEYRING", {"Fn::Sub": "kms:${FieldKey.Arn}"}),
            ("ConsoleLogGroups", "CALLVAULT_LOG_GROUPS", {"Fn::Sub": "/aws/connect/${ConnectInstanceAlias}"}),
        ):
            self.assertIn(name, out, f"no output {name} for {setting}")
            self.assertIn(setting, out[name].get("Description", ""), f"output {name}'s description does not name {setting}")
            got = resolve(self.t, out[name]["Value"], {"KeyPeriods": "single"})
            self.assertEqual(got, value, f"output {name} has the wrong value")


class TheFlowLogs(TemplateCase):
    def test_the_flow_log_group_masks_card_numbers(self):
        groups = [r for r in self.t["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"
                  and r["Properties"].get("LogGroupName") == {"Fn::Sub": "/aws/connect/${ConnectInstanceAlias}"}]
        self.assertEqual(len(groups), 1, "the template does not own the flow-log group /aws/connect/<alias>")
        props = groups[0]["Properties"]
        self.assertIn("RetentionInDays", props, "the flow-log group has no retention")
        policy = props.get("DataProtectionPolicy")
        self.assertTrue(policy, "the flow-log group has no data protection policy")
        ops = {}
        for s in policy["Statement"]:
            for op in s["Operation"]:
                ops[op] = s
        self.assertIn("Audit", ops, "the data protection policy has no Audit statement")
        self.assertIn("Deidentify", ops, "the data protection policy has no Deidentify statement")
        self.assertIn("FindingsDestination", ops["Audit"]["Operation"]["Audit"], "the Audit operation has no FindingsDestination")
        self.assertEqual(ops["Deidentify"]["Operation"]["Deidentify"], {"MaskConfig": {}}, "Deidentify must be MaskConfig {}")
        self.assertEqual(ops["Audit"]["DataIdentifier"], ops["Deidentify"]["DataIdentifier"],
                         "the Audit and Deidentify data identifiers must match exactly")
        self.assertIn(CARD_IDENTIFIER, ops["Deidentify"]["DataIdentifier"], "card numbers are not masked")

    def test_nobody_in_the_template_may_unmask(self):
        self.assertNotIn("logs:Unmask", json.dumps(self.t["Resources"]), "a role may read masked log data unmasked")


class TheConversations(TemplateCase):
    """The callers' stories that tests/conversations.rs plays through the
    Lambda must be this flow's: each block a Lex block of the flow, passing
    exactly the session attributes the flow passes, to this bot's intent."""

    def test_every_story_uses_the_flows_lex_blocks_and_attributes(self):
        folder = os.path.join(os.path.dirname(template_path()), "..", "events", "conversations")
        files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
        self.assertGreaterEqual(len(files), 6, "the callers' stories are missing")
        default = self.t["Parameters"]["Fields"]["Default"]
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                story = json.load(fh)
            fields = story.get("fields", default)
            flows = [f for p, f in self.flows if p["Fields"] == fields]
            self.assertTrue(flows, f"{name}: the template does not allow Fields={fields}")
            lex = {a["Identifier"]: a for a in flows[0]["Actions"] if a["Type"] == LEX}
            self.assertEqual(story.get("intent", INTENT), INTENT, f"{name}: another intent than the bot's")
            self.assertEqual(story.get("intentSlots", ["creditcard", "zipcode"]), slot_names(self.t),
                             f"{name}: other slots than the bot's")
            for block in story["blocks"]:
                self.assertIn(block["block"], lex, f"{name}: {block['block']} is not a Lex block of the flow")
                self.assertEqual(block["lexSessionAttributes"], lex[block["block"]]["Parameters"]["LexSessionAttributes"],
                                 f"{name}: {block['block']} passes other session attributes than the flow does")


class TheKeypadFlow(TemplateCase):
    """The optional flow that takes the card with Connect's own Store
    customer input, encrypted to the console's RSA key."""

    def test_it_exists_only_with_a_key_id_and_a_certificate(self):
        r = self.resource("KeypadCaptureFlow", "AWS::Connect::ContactFlow")
        cond = r.get("Condition")
        self.assertTrue(cond, "the keypad flow is not optional")
        base = dict(self.params[0])
        self.assertTrue(condition_true(self.t, cond, base))
        for missing in ("ConnectInputKeyId", "ConnectInputCertificate"):
            self.assertFalse(condition_true(self.t, cond, {**base, missing: ""}),
                             f"the keypad flow is made without {missing}")
        self.assertEqual(self.t["Parameters"]["ConnectInputKeyId"].get("Default"), "")

    def test_the_parameters_let_nothing_but_a_key_id_and_a_one_line_certificate_in(self):
        key = re.compile(self.t["Parameters"]["ConnectInputKeyId"]["AllowedPattern"])
        cert = re.compile(self.t["Parameters"]["ConnectInputCertificate"]["AllowedPattern"])
        self.assertTrue(key.fullmatch(SAMPLE_KEY_ID))
        self.assertTrue(cert.fullmatch(SAMPLE_CERTIFICATE))
        for bad in ('x"}', "a b", "../k", "k" * 129):
            self.assertFalse(key.fullmatch(bad), f"the key id pattern lets {bad!r} into the flow")
        for bad in (SAMPLE_CERTIFICATE.replace("\\n", "\n"), SAMPLE_CERTIFICATE + '"', SAMPLE_CERTIFICATE.replace("AbC", 'A"}')):
            self.assertFalse(cert.fullmatch(bad), f"the certificate pattern lets {bad!r} into the flow JSON")

    def test_store_customer_input_encrypts_to_the_given_key(self):
        for p, f in self.keypad_flows:
            blocks = [a for a in f["Actions"] if a["Type"] == STORE_INPUT]
            self.assertEqual(len(blocks), 1, "the keypad flow should have one Store customer input block")
            params = blocks[0]["Parameters"]
            self.assertEqual(params.get("StoreInput"), "True", "the input is not stored (StoreInput)")
            enc = params.get("InputEncryption", {})
            self.assertEqual(enc.get("EncryptionKeyId"), p["ConnectInputKeyId"], "encrypted to another key id")
            self.assertEqual(enc.get("Key"), p["ConnectInputCertificate"].replace("\\n", "\n"),
                             "the flow block does not carry the certificate as given")
            self.assertEqual(params.get("DTMFConfiguration", {}).get("InputTerminationSequence"), "#")

    def test_only_the_ciphertext_is_stored_in_the_keypad_attribute(self):
        for p, f in self.keypad_flows:
            actions = self.actions(f)
            stores = [a for a in f["Actions"] if "$.StoredCustomerInput" in json.dumps(a.get("Parameters", {}))
                      and a["Type"] != STORE_INPUT]
            self.assertEqual(len(stores), 1, "the stored input is used elsewhere than in one store step")
            a = stores[0]
            self.assertEqual(a["Type"], "UpdateContactAttributes")
            self.assertEqual(a["Parameters"]["Attributes"], {p["KeypadAttribute"]: "$.StoredCustomerInput"},
                             "the ciphertext is not stored in the keypad attribute alone")
            for path in paths_from(actions, f["StartAction"], lambda x: False):
                self.assertIn(a["Identifier"], path, f"a path ends without storing the ciphertext: {' -> '.join(path)}")

    def actions(self, f):
        return {a["Identifier"]: a for a in f["Actions"]}

    def test_the_console_is_told_the_keypad_field(self):
        out = self.t["Outputs"].get("ConsoleConnectInputFields")
        self.assertTrue(out, "no output for CALLVAULT_CONNECT_INPUT_FIELDS")
        self.assertIn("CALLVAULT_CONNECT_INPUT_FIELDS", out.get("Description", ""))
        self.assertEqual(out["Value"], {"Fn::Sub": "${KeypadAttribute}:card"})


class TheWalkthrough(unittest.TestCase):
    """docs/capture-walkthrough.md names the rights preflight really uses."""

    # What src/preflight/logs.rs calls for each log check.
    PREFLIGHT_LOG_CALLS = {
        "the configured log groups exist and are readable": {"logs:DescribeLogStreams", "logs:FilterLogEvents"},
        "the audit log group is writable": {"logs:CreateLogStream", "logs:PutLogEvents"},
    }

    def test_preflight_log_rights_are_the_calls_it_makes(self):
        with open(WALKTHROUGH, encoding="utf-8") as fh:
            rows = [line for line in fh if line.startswith("|")]
        for check, calls in self.PREFLIGHT_LOG_CALLS.items():
            row = [r for r in rows if check in r]
            self.assertEqual(len(row), 1, f"the walkthrough's preflight table has no row '{check}'")
            named = set(re.findall(r"`(logs:[A-Za-z]+)`", row[0]))
            self.assertEqual(named, calls, f"the walkthrough names {sorted(named)} for '{check}'; preflight calls {sorted(calls)}")

    def test_the_import_path_applies_retention_and_the_data_protection_policy(self):
        with open(WALKTHROUGH, encoding="utf-8") as fh:
            text = fh.read()
        for call in ("put-retention-policy", "put-data-protection-policy"):
            self.assertTrue(call in text, f"the walkthrough never runs aws logs {call}")

    def test_the_keypad_path_is_walked_through(self):
        with open(WALKTHROUGH, encoding="utf-8") as fh:
            text = fh.read()
        for need in ("connect-key new", "ConnectInputKeyId", "ConnectInputCertificate", "CALLVAULT_CONNECT_INPUT_KEYS"):
            self.assertTrue(need in text, f"the walkthrough does not mention {need}")


if __name__ == "__main__":
    unittest.main()


PERIOD_PREFIX = "alias/callvault/${AWS::StackName}/fields"
MONTHLY = {"KeyPeriods": "monthly"}


class ThePeriodKeys(TemplateCase):
    """KeyPeriods = monthly: one key per month, rolled on a schedule."""

    def source_statements(self):
        key = self.resource("PeriodKeyPolicySource", "AWS::KMS::Key")
        self.assertEqual(key.get("Condition"), "MonthlyKeys")
        return statements(key["Properties"]["KeyPolicy"])

    def grant(self, role, action):
        grants = [s for s in self.source_statements()
                  if principal_of(s) == {"Fn::GetAtt": [role, "Arn"]} and action in as_list(s["Action"])]
        self.assertEqual(len(grants), 1, f"the period key policy should grant {role} {action} in one statement")
        self.assertEqual(as_list(grants[0]["Action"]), [action], f"{role}'s {action} statement grants more")
        cond = grants[0].get("Condition", {})
        self.assertEqual(cond.get("StringEquals", {}).get("kms:EncryptionContext:purpose"), PURPOSE)
        keys = cond.get("ForAllValues:StringEquals", {}).get("kms:EncryptionContextKeys")
        self.assertEqual(set(as_list(keys or [])), CONTEXT_KEYS, f"{role}: context keys not exactly {sorted(CONTEXT_KEYS)}")
        for k in ("contactId", "field"):
            self.assertEqual(str(cond.get("Null", {}).get(f"kms:EncryptionContext:{k}")).lower(), "false")
        return cond

    def test_the_lambda_and_the_console_use_the_same_period_keyring(self):
        env = self.t["Resources"]["EncryptFunction"]["Properties"]["Environment"]["Variables"]
        want = {"Fn::Sub": f"kms-period:{PERIOD_PREFIX}"}
        self.assertEqual(resolve(self.t, env["CALLVAULT_KEYRING"], MONTHLY), want, "the Lambda does not encrypt under the period keyring")
        self.assertEqual(resolve(self.t, self.t["Outputs"]["ConsoleKeyring"]["Value"], MONTHLY), want)
        self.assertEqual(resolve(self.t, env["CALLVAULT_KEYRING"], {"KeyPeriods": "single"}), {"Fn::Sub": "kms:${FieldKey.Arn}"})

    def test_the_lambda_creates_data_keys_only_through_the_current_alias(self):
        cond = self.grant("EncryptRole", "kms:GenerateDataKey")
        self.assertEqual(cond["StringEquals"].get("kms:RequestAlias"), {"Fn::Sub": f"{PERIOD_PREFIX}/current"},
                         "the Lambda may create data keys other than through <prefix>/current")
        lambda_acts = {a for s in self.source_statements() if "EncryptRole" in json.dumps(principal_of(s))
                       for a in as_list(s["Action"])}
        self.assertEqual(lambda_acts, {"kms:GenerateDataKey"})

    def test_the_console_decrypts_only_with_keys_aliased_under_the_prefix(self):
        cond = self.grant("ConsoleRole", "kms:Decrypt")
        self.assertEqual(cond.get("ForAnyValue:StringLike", {}).get("kms:ResourceAliases"), {"Fn::Sub": f"{PERIOD_PREFIX}/*"},
                         "the console's decrypt is not bound to the period aliases")
        acts = {a for s in self.source_statements() if "ConsoleRole" in json.dumps(principal_of(s)) for a in as_list(s["Action"])}
        self.assertEqual(acts, {"kms:Decrypt", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"})
        for s in self.source_statements():
            if "root" in json.dumps(principal_of(s)):
                for bad in ("kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*"):
                    self.assertNotIn(bad, as_list(s["Action"]), f"the root statement grants {bad}")
        listing = self.resource("ConsoleListsPeriodKeys", "AWS::IAM::RolePolicy")["Properties"]
        self.assertEqual(listing["RoleName"], {"Ref": "ConsoleRole"})
        self.assertEqual({a for s in statements(listing["PolicyDocument"]) for a in as_list(s["Action"])}, {"kms:ListAliases"})

    def test_the_roller_may_make_keys_and_move_aliases_only(self):
        role = self.resource("KeyRollerRole", "AWS::IAM::Role")["Properties"]
        sts = [s for p in role["Policies"] for s in statements(p["PolicyDocument"])]
        acts = {a for s in sts for a in as_list(s["Action"])}
        self.assertEqual(acts, {"kms:ListAliases", "kms:CreateKey", "kms:TagResource", "kms:DescribeKey",
                                "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:PutKeyPolicy",
                                "kms:CreateAlias", "kms:UpdateAlias"},
                         "the roller's rights are not exactly what keys roll uses")
        for s in sts:
            acts = as_list(s["Action"])
            if "kms:CreateKey" in acts:
                self.assertEqual(s["Condition"]["StringEquals"].get("aws:RequestTag/callvault:deployment"), {"Ref": "AWS::StackName"},
                                 "the roller may create untagged keys")
            if any(a in acts for a in ("kms:UpdateAlias", "kms:CreateAlias", "kms:PutKeyPolicy", "kms:EnableKeyRotation")):
                text = json.dumps(s)
                self.assertTrue("aws:ResourceTag/callvault:deployment" in text or f"alias/callvault/${{AWS::StackName}}/fields/*" in text,
                                f"{acts} is not limited to this deployment's keys or aliases: {text}")

    def test_a_daily_schedule_runs_keys_roll_as_the_roller(self):
        sched = self.resource("KeyRollSchedule", "AWS::Scheduler::Schedule")
        self.assertEqual(sched.get("Condition"), "ScheduledRoll")
        props = sched["Properties"]
        self.assertTrue(props["ScheduleExpression"].startswith("cron(") and props["ScheduleExpression"].endswith("* * ? *)"),
                        "keys roll does not run every day")
        target = props["Target"]
        template, values = target["Input"]["Fn::Sub"]
        overrides = json.loads(template)
        self.assertEqual(overrides["taskRoleArn"], "${KeyRollerRole.Arn}", "the task does not run as the roller")
        c = overrides["containerOverrides"][0]
        self.assertEqual(c["command"], ["keys", "roll"])
        env = {e["name"]: e["value"] for e in c["environment"]}
        self.assertEqual(env["CALLVAULT_KEYRING"], f"kms-period:{PERIOD_PREFIX}")
        self.assertEqual(env["CALLVAULT_KEY_POLICY_FROM"], "${Source}")
        self.assertEqual(values["Source"], {"Fn::GetAtt": ["PeriodKeyPolicySource", "Arn"]})
        sched_role = self.resource("KeyRollSchedulerRole", "AWS::IAM::Role")["Properties"]
        acts = {a for p in sched_role["Policies"] for s in statements(p["PolicyDocument"]) for a in as_list(s["Action"])}
        self.assertEqual(acts, {"ecs:RunTask", "iam:PassRole"})
