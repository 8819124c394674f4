"""Amazon Connect's side of the keypad tests, played by the Python AWS
Encryption SDK: messages shaped like those of Connect's "Store customer input"
block (raw RSA master key, provider "AmazonConnect", key id = Connect key id,
RSA-OAEP-SHA512/MGF1-SHA512, suite 0x0378, no encryption context).

  connect_peer.py encrypt KEYFILE KEY_ID [--extra-key ID] [--provider P] [--context K=V]
      (plaintext on stdin) prints the base64 message. KEYFILE may hold a
      public key, a private key or an X.509 certificate; its public key wraps
      the data key. --extra-key adds a second data key; --provider replaces
      "AmazonConnect"; --context adds an encryption context pair.
  connect_peer.py native-weak AESKEYFILE CONTEXT_JSON
      (plaintext on stdin) a callvault-native message (raw AES key, provider
      "callvault", callvault's context) on the non-committing suite 0x0378.
  connect_peer.py check-cert CERT PUBLIC PRIVATE
      parses the three files and exits 0 only if they hold one key pair and
      the certificate is self-signed by it.
"""
import argparse
import base64
import json
import pathlib
import sys

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey, RawMasterKeyProvider
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

CONNECT_SUITE = Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384


def public_key_of(path):
    data = pathlib.Path(path).read_bytes()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def rsa_provider(public_key, provider, key_ids):
    """A raw master key provider with one RSA master key per key id, all on
    the same public key: one encrypted data key each."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def _get_raw_key(self, key_id):
        return WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.RSA_OAEP_SHA512_MGF1,
            wrapping_key=pem,
            wrapping_key_type=EncryptionKeyType.PUBLIC,
        )

    cls = type("ConnectLikeProvider", (RawMasterKeyProvider,), {
        "provider_id": provider, "_get_raw_key": _get_raw_key,
    })
    out = cls()
    out.add_master_keys_from_list([k.encode() for k in key_ids])
    return out


def client():
    # Connect's own policy: it encrypts on a non-committing suite.
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )


def encrypt(args):
    public_key = public_key_of(args.keyfile)
    master = rsa_provider(public_key, args.provider, [args.key_id] + args.extra_key)
    context = dict(pair.split("=", 1) for pair in args.context)
    ciphertext, _ = client().encrypt(
        source=sys.stdin.buffer.read(),
        key_provider=master,
        algorithm=CONNECT_SUITE,
        encryption_context=context,
    )
    sys.stdout.write(base64.b64encode(ciphertext).decode())


def native_weak(args):
    path = pathlib.Path(args.keyfile)
    key = base64.b64decode(path.read_text().strip())
    master = RawMasterKey(
        provider_id="callvault",
        key_id=path.stem.encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    ciphertext, _ = client().encrypt(
        source=sys.stdin.buffer.read(),
        key_provider=master,
        algorithm=CONNECT_SUITE,
        encryption_context=json.loads(args.context_json),
    )
    sys.stdout.write(base64.b64encode(ciphertext).decode())


def check_cert(args):
    cert = x509.load_pem_x509_certificate(pathlib.Path(args.cert).read_bytes())
    public = serialization.load_pem_public_key(pathlib.Path(args.public).read_bytes())
    private = serialization.load_pem_private_key(
        pathlib.Path(args.private).read_bytes(), password=None
    )
    numbers = {
        "certificate": cert.public_key().public_numbers(),
        "public.pem": public.public_numbers(),
        "private.pem": private.public_key().public_numbers(),
    }
    if len({(n.n, n.e) for n in numbers.values()}) != 1:
        sys.exit("the three files do not hold one key pair")
    if cert.issuer != cert.subject:
        sys.exit("the certificate is not self-issued")
    # Raises if the signature was not made by this key.
    cert.public_key().verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )
    print("ok %d bits" % private.key_size)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("encrypt")
    p.add_argument("keyfile")
    p.add_argument("key_id")
    p.add_argument("--extra-key", action="append", default=[])
    p.add_argument("--provider", default="AmazonConnect")
    p.add_argument("--context", action="append", default=[])
    p = sub.add_parser("native-weak")
    p.add_argument("keyfile")
    p.add_argument("context_json")
    p = sub.add_parser("check-cert")
    p.add_argument("cert")
    p.add_argument("public")
    p.add_argument("private")
    args = parser.parse_args()
    {"encrypt": encrypt, "native-weak": native_weak, "check-cert": check_cert}[args.mode](args)


if __name__ == "__main__":
    main()
