"""Secrets from the environment or a .env file (python-dotenv); never from host data.

Secrets stay out of `host.data` on purpose: `pyinfra debug-inventory` prints all host
data. Roles ask for them by key, at the moment they render a secret file.
"""

import hashlib
import hmac
import os
import re
from functools import lru_cache
from pathlib import Path

from dotenv import dotenv_values

from .paths import REPO

# Which file to read; the sandbox inventory points this at its throwaway secrets.
ENV_FILE_VARIABLE = "GALION_ENV_FILE"
# Values that mean "not filled in yet" (copied from .env.example, or typed as a reminder).
PLACEHOLDER = re.compile(
    r"^(|change[-_ ]?me.*|changeme.*|todo.*|xxx+|<.*>|\.\.\.|secret|password)$", re.IGNORECASE
)
# Shortest acceptable generated secret (`openssl rand -base64 32` gives 44 characters).
MIN_SECRET_LENGTH = 16


class SecretError(ValueError):
    pass


def env_file() -> Path:
    return Path(os.environ.get(ENV_FILE_VARIABLE, REPO / ".env"))


@lru_cache(maxsize=1)
def _values() -> dict[str, str]:
    path = env_file()
    values = (
        {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}
    )
    # The process environment wins, so CI can inject secrets without writing a file.
    values.update({k: v for k, v in os.environ.items() if k in values or k in example_keys()})
    return values


@lru_cache(maxsize=1)
def example_keys() -> frozenset[str]:
    example = REPO / ".env.example"
    keys = set()
    for line in example.read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if m:
            keys.add(m.group(1))
    return frozenset(keys)


def problem(key: str) -> str | None:
    """Why a required secret is unusable, or None if it is fine."""
    value = _values().get(key)
    if value is None:
        return f"missing from {env_file()} and the environment"
    if PLACEHOLDER.match(value.strip()):
        return "still a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    if re.search(r"[\s\"'\\]", value):
        # Secrets go into config files with their own quoting (PgBouncer's auth file).
        return "holding whitespace, a quote or a backslash"
    return None


def get(key: str) -> str:
    reason = problem(key)
    if reason:
        raise SecretError(f"secret {key} is {reason}")
    return _values()[key]


def reset_cache() -> None:
    _values.cache_clear()
    example_keys.cache_clear()


def derived(key: str, purpose: str) -> str:
    """A password nobody types, for `purpose` (a user only one program on the host logs
    in as): derived from secret `key`, so .env needs no entry for it and rotating `key`
    rotates it too."""
    return hmac.new(get(key).encode(), purpose.encode(), hashlib.sha256).hexdigest()
