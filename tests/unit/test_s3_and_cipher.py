"""The pieces of the cipher passphrase check that need no network: AWS Signature V4 on
AWS's own published example, and decrypting what pgBackRest's cipher format writes."""

import subprocess

from galion import s3
from operations.backups.checks import opens_repository_file


def test_signature_v4_matches_the_aws_documentation_example():
    # "Example: GET Object" of the S3 API reference (Signature Version 4, header auth).
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": s3.EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    auth = s3.signature_v4(
        "GET", "/test.txt", headers, "us-east-1", "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524T000000Z",
    )  # fmt: skip
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def _encrypt(plain: bytes, passphrase: str) -> bytes:
    """What pgBackRest writes: openssl's salted format, AES-256-CBC, key by SHA-1."""
    return subprocess.run(
        ["openssl", "enc", "-e", "-aes-256-cbc", "-md", "sha1", "-salt", "-pass", "env:P"],
        input=plain,
        capture_output=True,
        check=True,
        env={"P": passphrase},
    ).stdout


def test_the_repository_opens_only_with_its_passphrase():
    info = b"[backrest]\nbackrest-format=5\n"
    encrypted = _encrypt(info, "the-passphrase-of-the-repository")
    assert encrypted.startswith(b"Salted__")
    assert opens_repository_file(encrypted, "the-passphrase-of-the-repository")
    assert not opens_repository_file(encrypted, "a-new-passphrase-in-the-env-file")
