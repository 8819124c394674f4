#!/usr/bin/env python3
"""Regenerates the committed seed corpus in fuzz/corpus/ (not needed to fuzz).

    ~/.cache/callvault/venv/bin/python fuzz/make_seeds.py [ESDK_VECTORS_DIR]

Needs the Python AWS Encryption SDK and material providers (the venv that
scripts/test creates) and the ESDK test vectors (default: the copy in lambda-encrypt/tests/data/esdk-vectors).

- lex_handler: the sample Lex V2 events, plus caller text (digits, words).
- ciphertext_context: first byte is the mode (0 = base64 text, 1 = raw bytes).
  callvault-shaped messages encrypted by the Python ESDK under the fuzz
  target's fixed public key, and a few public ESDK vectors. The
  `authentic-*` seeds must decrypt (the fuzz target embeds them).
- leak_guard: log lines with card-like numbers.
"""
import base64
import json
import pathlib
import shutil
import sys

import aws_encryption_sdk
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import AesWrappingAlg, CreateRawAesKeyringInput
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
VECTORS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "lambda-encrypt" / "tests" / "data" / "esdk-vectors"
KEY = b"callvault-fuzz-not-a-secret-key!"  # the fuzz targets' fixed public key
CONTACT = "5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6"


def corpus(name):
    path = FUZZ / "corpus" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def lex_handler():
    out = corpus("lex_handler")
    for event in sorted((ROOT / "lambda-encrypt" / "events").glob("*.json")):
        shutil.copyfile(event, out / event.name)
    # Not JSON objects: the target also speaks these into a well-formed event.
    spoken = {
        "spoken-digits.txt": b"4111111111111111",
        "spoken-grouped.txt": b"4111 1111-1111 1111",
        "spoken-words.txt": b"four one one one one one one one one one one one one one one one",
        "spoken-double.txt": b"five double five five five five five five five five five five four four four four",
        "spoken-amex.txt": b"3782 822463 10005",
        "spoken-luhn-fail.txt": b"4111111111111112",
        "spoken-generic.txt": b"\x01six oh one one one one one one one one one one one one one seven",
    }
    for name, text in spoken.items():
        (out / name).write_bytes(text)


def callvault_messages():
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_raw_aes_keyring(
        input=CreateRawAesKeyringInput(
            key_namespace="callvault",
            key_name="fuzz",
            wrapping_key=KEY,
            wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        )
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    context = {"purpose": "callvault/caller-input", "contactId": CONTACT, "field": "creditcard"}
    legacy = {"stage": "dev", "name": "encryption", "token": "t0k3n"}
    made = {}
    for suite, alg in [
        ("0478", Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY),
        ("0578", Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384),
    ]:
        made[f"callvault-{suite}"] = client.encrypt(
            source=b"4111111111111111", keyring=keyring, encryption_context=context, algorithm=alg
        )[0]
    made["legacy-context-0478"] = client.encrypt(
        source=b"98101",
        keyring=keyring,
        encryption_context=legacy,
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    )[0]
    return made


def ciphertext_context():
    out = corpus("ciphertext_context")
    for name, message in callvault_messages().items():
        (out / f"authentic-{name}.bin").write_bytes(b"\x01" + message)
        (out / f"b64-{name}.txt").write_bytes(b"\x00" + base64.b64encode(message))
    picks = {
        # valid vectors under the public key "aes-256": must decrypt
        "authentic-vector-0478-ec2.bin": ("v4-Net-4.0.1", "0478-ec_len_2-cmm_Default-"),
        "authentic-vector-0578-ec2.bin": ("v4-Net-4.0.1", "0578-ec_len_2-cmm_Default-"),
        "authentic-vector-0478-ec0.bin": ("v4-Net-4.0.1", "0478-ec_len_0-cmm_Default-"),
        "authentic-vector-0578-ec0.bin": ("v4-Net-4.0.1", "0578-ec_len_0-cmm_Default-"),
        # required-context message (keys not stored), and a format-1 message
        "vector-0478-required-ec.bin": ("v4-Net-4.0.1", "0478-ec_len_2-cmm_RequiredEncryptionContext-"),
        "vector-0378-format1.bin": ("v4-Net-4.0.1", "0378-ec_len_2-cmm_Default-"),
        # made by a faulty ESDK release: must fail
        "invalid-vector-0478.bin": ("invalid-Net-4.0.0", "0478-ec_len_2-cmm_Default-"),
        "invalid-vector-0578.bin": ("invalid-Net-4.0.0", "0578-ec_len_0-cmm_Default-"),
    }
    for name, (folder, prefix) in picks.items():
        manifest = json.loads((VECTORS / folder / "manifest.json").read_text())
        tests = [
            t
            for n, t in sorted(manifest["tests"].items())
            if n.startswith(prefix)
            and all(k["type"] == "raw" and k.get("encryption-algorithm") == "aes" for k in t["master-keys"])
        ]
        message = (VECTORS / folder / tests[0]["ciphertext"].removeprefix("file://")).read_bytes()
        (out / name).write_bytes(b"\x01" + message)


def leak_guard():
    out = corpus("leak_guard")
    lines = {
        "bare.txt": "payment card 4111111111111111 declined",
        "grouped-spaces.txt": "card 4111 1111 1111 1111 ok",
        "grouped-dashes.txt": "4111-1111-1111-1111",
        "amex.txt": "amex 3782 822463 10005.",
        "json.txt": '{"ContactId":"5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6","Parameters":{"cc":"6011111111111117"}}',
        "two-cards.txt": "two: 4111111111111111 and 5555555555554444",
        "expiry-after.txt": "4111 1111 1111 1111 2030",
        "order-before.txt": "order 012345678 4111 1111 1111 1111",
        "near-miss.txt": "4111111111111112 411111111111 41111111111111111111 2026-11-24T12:00:00Z",
        "unicode.txt": "Zahlung \u2713 4111111111111111 \u00fc",
        "masked.txt": "411111******1111",
        "phone-zip.txt": "phone 555-0100, zip 98101",
        "separators.txt": "card 4111.1111/1111\t1111 and 5555  5555 - 5555\u200b4444",
        "full-width.txt": "\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 1111 \u0661\u0661\u0661\u0661",
    }
    for name, text in lines.items():
        (out / name).write_text(text)
    message = callvault_messages()["callvault-0478"]
    (out / "ciphertext.txt").write_text(base64.b64encode(message).decode())


if __name__ == "__main__":
    lex_handler()
    ciphertext_context()
    leak_guard()
