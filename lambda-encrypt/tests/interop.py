"""Python AWS Encryption SDK side of the interoperability tests.

  interop.py decrypt KEYFILE CONTACT FIELD   (ciphertext base64 on stdin)
      decrypts with a raw AES keyring (namespace "callvault", key name = file
      stem), checks the encryption context, prints the plaintext.
  interop.py encrypt KEYFILE CONTEXT_JSON    (plaintext on stdin)
      encrypts with the same keyring and context, prints base64.
  interop.py kms-encrypt KEY_ARN CONTEXT_JSON   (plaintext on stdin)
      encrypts with an AWS KMS keyring for that key (the endpoint from
      AWS_ENDPOINT_URL, as boto3 reads it), prints base64.
"""
import base64
import json
import pathlib
import sys

import aws_encryption_sdk
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    AesWrappingAlg,
    CreateAwsKmsKeyringInput,
    CreateRawAesKeyringInput,
)
from aws_encryption_sdk import CommitmentPolicy


def keyring(keyfile):
    path = pathlib.Path(keyfile)
    key = base64.b64decode(path.read_text().strip())
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return mpl.create_raw_aes_keyring(
        input=CreateRawAesKeyringInput(
            key_namespace="callvault",
            key_name=path.stem,
            wrapping_key=key,
            wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        )
    )


def main():
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    mode = sys.argv[1]
    if mode == "decrypt":
        keyfile, contact, field = sys.argv[2:5]
        ciphertext = base64.b64decode(sys.stdin.read().strip(), validate=True)
        plaintext, header = client.decrypt(source=ciphertext, keyring=keyring(keyfile))
        context = {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-crypto-")}
        expected = {"purpose": "callvault/caller-input", "contactId": contact, "field": field}
        if context != expected:
            print("context mismatch: %r" % sorted(context), file=sys.stderr)
            sys.exit(3)
        sys.stdout.write(plaintext.decode())
    elif mode == "encrypt":
        keyfile, context_json = sys.argv[2:4]
        ciphertext, _ = client.encrypt(
            source=sys.stdin.read().encode(),
            keyring=keyring(keyfile),
            encryption_context=json.loads(context_json),
        )
        sys.stdout.write(base64.b64encode(ciphertext).decode())
    elif mode == "kms-encrypt":
        import boto3

        key_arn, context_json = sys.argv[2:4]
        kms = boto3.client("kms", region_name=key_arn.split(":")[3])
        mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
        kms_keyring = mpl.create_aws_kms_keyring(
            input=CreateAwsKmsKeyringInput(kms_key_id=key_arn, kms_client=kms)
        )
        ciphertext, _ = client.encrypt(
            source=sys.stdin.read().encode(),
            keyring=kms_keyring,
            encryption_context=json.loads(context_json),
        )
        sys.stdout.write(base64.b64encode(ciphertext).decode())
    else:
        sys.exit("unknown mode")


if __name__ == "__main__":
    main()
