"""SCRAM-SHA-256 verifiers (RFC 5802/7677), as PostgreSQL and PgBouncer store them.

Passwords are turned into verifiers here, on the operator's machine: the plaintext
never travels to a server or appears on a command line, and a stored verifier can be
checked against the wanted password without knowing more than its salt.
"""

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return stored_key, server_key


def verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(16)
    stored_key, server_key = _keys(password, salt, iterations)

    def b64(b):
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def matches(stored: str | None, password: str) -> bool:
    """Whether a stored SCRAM verifier was made from this password."""
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    try:
        head, keys = stored[len("SCRAM-SHA-256$") :].split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        want = _keys(password, base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(want[0], base64.b64decode(stored_key)) and hmac.compare_digest(
            want[1], base64.b64decode(server_key)
        )
    except (ValueError, TypeError):
        return False
