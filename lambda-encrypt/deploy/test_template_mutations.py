"""The conformance test can fail: each mutation below breaks one property of
template.yaml, and test_template.py must then fail.

    "$venv/bin/python" -m unittest -v lambda-encrypt/deploy/test_template_mutations.py

A mutation that no longer applies (the template text changed) fails too:
update its before/after text so it keeps breaking the same property.
"""

import importlib.util
import io
import os
import tempfile
import unittest

from cfnlint.decode import cfn_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "template.yaml")
CONFORMANCE = os.path.join(HERE, "test_template.py")

# (what is broken, text in template.yaml, text that replaces it)
MUTATIONS = [
 ("slot-only utterance removed", '                - Utterance: "{creditcard}"\n', ''),
 ("timeout exit skips the store", '{"NextAction": "logging-on-capture", "ErrorType": "InputTimeLimitExceeded"}', '{"NextAction": "thanks", "ErrorType": "InputTimeLimitExceeded"}'),
 ("store error skips the status", '"Errors": [{"NextAction": "store-creditcard-status", "ErrorType": "NoMatchingError"}]', '"Errors": [{"NextAction": "check-creditcard", "ErrorType": "NoMatchingError"}]'),
 ("one store for two attributes", '"Attributes": {"creditcard": "$.Lex.SessionAttributes.creditcard"}', '"Attributes": {"creditcard": "$.Lex.SessionAttributes.creditcard", "zipcode": "$.Lex.SessionAttributes.zipcode"}'),
 ("Null condition removed", '              "Null":\n                kms:EncryptionContext:contactId: "false"\n                kms:EncryptionContext:field: "false"\n          - Sid: ConsolePreflight', '          - Sid: ConsolePreflight'),
 ("context keys widened", 'kms:EncryptionContextKeys: [purpose, contactId, field, aws-crypto-public-key]\n              "Null":\n                kms:EncryptionContext:contactId: "false"\n                kms:EncryptionContext:field: "false"\n          - Sid: ConsoleDecrypts', 'kms:EncryptionContextKeys: [purpose, contactId, field, aws-crypto-public-key, extra]\n              "Null":\n                kms:EncryptionContext:contactId: "false"\n                kms:EncryptionContext:field: "false"\n          - Sid: ConsoleDecrypts'),
 ("IVR recording on", '"IVRRecordingBehavior": "Disabled"', '"IVRRecordingBehavior": "Enabled"'),
 ("logging stays on for Lex", '{"Identifier": "logging-off-capture", "Type": "UpdateFlowLoggingBehavior",\n               "Parameters": {"FlowLoggingBehavior": "Disabled"}', '{"Identifier": "logging-off-capture", "Type": "UpdateFlowLoggingBehavior",\n               "Parameters": {"FlowLoggingBehavior": "Enabled"}'),
 ("reason removed", '      logging-on-keypad: >-\n        Resumed after the keypad retry block, as logging-on-capture.\n', ''),
 ("ZIP+4 regex lost", "Pattern: !If [ZipPlus4, '[0-9]{5}(\\u002D?[0-9]{4})?', \"[0-9]{5}\"]", 'Pattern: "[0-9]{5}"'),
 ("card regex unbounded", 'Pattern: !If [Card16, "[0-9]{16}", "[0-9]{13,19}"]', 'Pattern: "[0-9]{13,}"'),
 ("test alias not permitted", "bot-alias/${CaptureBot}/TSTALIASID", "bot-alias/${CaptureBot}/LIVE"),
 ("prompt without question", 'What is your card number?"', 'Thank you."'),
 ("slot prompt without question", 'Value: What is the long number on the front of your card? Say it', 'Value: Tell me the long number on the front of your card. Say it'),
 ("checkpoint key RSA", 'KeySpec: ECC_NIST_P256', 'KeySpec: RSA_2048'),
 ("console may delete audit", '                  - logs:GetLogEvents\n                Resource:\n                  - !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}"', '                  - logs:GetLogEvents\n                  - logs:DeleteLogStream\n                Resource:\n                  - !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}"'),
 ("keypad too short", 'MaxLength: !If [Card16, 16, 19]', 'MaxLength: 12'),
 ("keypad block allows voice", '"callvault_keypad_only": "true"', '"callvault_keypad_only": "false"'),
 ("undocumented Lex attribute", '"callvault_keypad_only": "true"', '"callvault_keypad_only": "true", "x-amz-lex:allow-audio-input:*:*": "false"'),
 ("masking removed", '                MaskConfig: {}', '                MaskConfig: {Bad: 1}'),
 ("code hook inactive", '                      CodeHook:\n                        IsActive: true', '                      CodeHook:\n                        IsActive: false'),
 ("no contactId for Lex", '"contactId": "$.ContactId",\n                   "creditcard"', '"creditcard"'),
 ("checkpoint output gone", '  ConsoleCheckpointKey:\n    Description: CALLVAULT_CHECKPOINT_KEY for the console', '  ConsoleCheckpointKeyX:\n    Description: the key'),
 ("lambda may decrypt", '            Action: kms:GenerateDataKey\n', '            Action: [kms:GenerateDataKey, kms:Decrypt]\n'),
 ("keypad retry skipped", '"Conditions": [{"NextAction": "check-zipcode", "Condition": {"Operator": "Equals", "Operands": ["captured"]}}],\n                 "Errors": [{"NextAction": "logging-off-keypad-card"', '"Conditions": [{"NextAction": "check-zipcode", "Condition": {"Operator": "Equals", "Operands": ["captured"]}}],\n                 "Errors": [{"NextAction": "sorry"'),
 ("lambda may use any period key", 'kms:RequestAlias: !Sub "alias/callvault/${AWS::StackName}/fields/current"', 'kms:ResourceAliases: !Sub "alias/callvault/${AWS::StackName}/fields/*"'),
 ("roller may delete keys", '                  - kms:EnableKeyRotation\n                  - kms:GetKeyPolicy', '                  - kms:EnableKeyRotation\n                  - kms:ScheduleKeyDeletion\n                  - kms:GetKeyPolicy'),
 ("unknown flow parameter", '"Parameters": {"ComparisonValue": "$.Attributes.zipcode_status"},\n               "Transitions": {\n                 "NextAction": "logging-off-keypad-zip"', '"Parameters": {"ComparisonValue": "$.Attributes.zipcode_status", "Value": "x"},\n               "Transitions": {\n                 "NextAction": "logging-off-keypad-zip"'),

 ("bot changed, version not republished", 'NluConfidenceThreshold: 0.4', 'NluConfidenceThreshold: 0.5'),
 ("alias pinned to one version", "        - FieldsCardZip5\n        - !GetAtt CaptureBotVersionCardZip5", "        - FieldsCardZip\n        - !GetAtt CaptureBotVersionCardZip5"),
 ("superseded recording action", '"Identifier": "recording-off", "Type": "UpdateContactRecordingAndAnalyticsBehavior"', '"Identifier": "recording-off", "Type": "UpdateContactRecordingBehavior"'),
 ("no initial-response code hook step", "                NextStep:\n                  DialogAction:\n                    Type: InvokeDialogCodeHook", "                NextStep:\n                  DialogAction:\n                    Type: ElicitIntent"),
 ("initial-response code hook off", "              InitialResponseSetting:\n                CodeHook:\n                  IsActive: true", "              InitialResponseSetting:\n                CodeHook:\n                  IsActive: false"),
 ("keypad card block drops the stored ZIP", '                   "zipcode": "$.Attributes.zipcode",\n', ''),
 ("star said to start over", '"Text": "Let\'s use the keypad instead. Please key in the long number', '"Text": "Let\'s use the keypad instead. Press star to start over. Please key in the long number'),
 ("bot apologises before the flow", "                        PostCodeHookSpecification:\n                          FailureNextStep:", "                        PostCodeHookSpecification:\n                          FailureResponse:\n                            MessageGroupsList:\n                              - Message:\n                                  PlainTextMessage:\n                                    Value: Sorry.\n                          FailureNextStep:"),
 ("flow apologises again", '"Text": "We could not take your details this time.', '"Text": "Sorry, we could not take your details this time.'),
 ("keypad flow always on", "    Condition: KeypadFlow\n    Properties:\n      InstanceArn", "    Properties:\n      InstanceArn"),
 ("keypad input not stored", '"StoreInput": "True",', '"StoreInput": "False",'),
 ("keypad input encrypted to a fixed key", '"InputEncryption": {"EncryptionKeyId": "${KeyId}"', '"InputEncryption": {"EncryptionKeyId": "some-other-key"'),
 ("keypad logging stays on", '{"Identifier": "keypad-logging-off", "Type": "UpdateFlowLoggingBehavior",\n               "Parameters": {"FlowLoggingBehavior": "Disabled"}', '{"Identifier": "keypad-logging-off", "Type": "UpdateFlowLoggingBehavior",\n               "Parameters": {"FlowLoggingBehavior": "Enabled"}'),
 ("keypad recording on", '"Parameters": {"VoiceBehavior": {"VoiceRecordingBehavior": {"RecordedParticipants": [], "IVRRecordingBehavior": "Disabled"}}},\n               "Transitions": {"NextAction": "keypad-logging-off"', '"Parameters": {"VoiceBehavior": {"VoiceRecordingBehavior": {"RecordedParticipants": ["Customer"], "IVRRecordingBehavior": "Disabled"}}},\n               "Transitions": {"NextAction": "keypad-logging-off"'),
 ("ciphertext in another attribute", '"Attributes": {"${Attribute}": "$.StoredCustomerInput"}', '"Attributes": {"keypad": "$.StoredCustomerInput"}'),
 ("certificate pattern lets quotes in", "AllowedPattern: '^$|^-----BEGIN CERTIFICATE-----(\\\\n[A-Za-z0-9+/=]{1,76})+", "AllowedPattern: '^$|^-----BEGIN CERTIFICATE-----(\\\\n[A-Za-z0-9+/=\"}]{1,76})+"),
 ("key policy names a fresh role", '          - Sid: ConsolePreflightReadsKeyState\n            Effect: Allow\n            Principal:\n              AWS: "*"', '          - Sid: ConsolePreflightReadsKeyState\n            Effect: Allow\n            Principal:\n              AWS: !GetAtt ConsoleRole.Arn'),
 ("grant open to every account", '                aws:PrincipalArn: !GetAtt EncryptRole.Arn\n              StringEquals:\n                aws:PrincipalAccount: !Ref AWS::AccountId\n', '                aws:PrincipalArn: !GetAtt EncryptRole.Arn\n              StringEquals:\n'),
 ("console may list every log group", '                  - connect:ListBots\n                Resource: !Ref ConnectInstanceArn\n', '                  - connect:ListBots\n                Resource: !Ref ConnectInstanceArn\n              - Effect: Allow\n                Action: logs:DescribeLogGroups\n                Resource: "*"\n'),
]


class TheConformanceTest(unittest.TestCase):
    def test_it_passes_on_the_template(self):
        result, output = run_conformance(TEMPLATE)
        self.assertTrue(result.wasSuccessful(), f"the conformance test fails on template.yaml itself:\n{output[-2000:]}")

    def test_it_fails_on_each_broken_template(self):
        with open(TEMPLATE) as f:
            source = f.read()
        digest = MODULE.bot_definition_digest(MODULE.plain(cfn_yaml.load(TEMPLATE)))
        self.assertIn(digest, source, "template.yaml's bot versions do not carry the bot's digest")
        with tempfile.TemporaryDirectory() as tmp:
            for name, before, after in MUTATIONS:
                with self.subTest(mutation=name):
                    self.assertIn(before, source, f"mutation '{name}' no longer applies to template.yaml")
                    path = os.path.join(tmp, "template.yaml")
                    with open(path, "w") as f:
                        f.write(source.replace(before, after, 1))
                    if name not in KEEP_DIGEST:
                        # A bot change without a new digest fails the
                        # version check anyway: give the mutated bot its
                        # digest, so each mutation proves its own check.
                        reseal(path, digest)
                    result, output = run_conformance(path)
                    self.assertFalse(result.wasSuccessful(), f"the conformance test passes on a template with: {name}")
                    self.assertTrue(result.failures, f"'{name}' makes the test crash instead of fail:\n{output[-1500:]}")


# Mutations that must keep the template's digest (they break the versioning itself).
KEEP_DIGEST = {"bot changed, version not republished"}


def reseal(path, old_digest):
    with open(path) as f:
        text = f.read()
    new = MODULE.bot_definition_digest(MODULE.plain(cfn_yaml.load(path)))
    with open(path, "w") as f:
        f.write(text.replace(old_digest, new))


def conformance_module():
    spec = importlib.util.spec_from_file_location("callvault_test_template", CONFORMANCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_conformance(path):
    """Runs test_template.py in this process against the template at path."""
    saved = os.environ.get("CALLVAULT_TEMPLATE")
    os.environ["CALLVAULT_TEMPLATE"] = path
    try:
        suite = unittest.defaultTestLoader.loadTestsFromModule(MODULE)
        out = io.StringIO()
        result = unittest.TextTestRunner(stream=out, verbosity=0).run(suite)
        return result, out.getvalue()
    finally:
        if saved is None:
            os.environ.pop("CALLVAULT_TEMPLATE", None)
        else:
            os.environ["CALLVAULT_TEMPLATE"] = saved


MODULE = conformance_module()

if __name__ == "__main__":
    unittest.main()
