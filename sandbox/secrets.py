"""Throwaway secrets for the sandbox, one per key of .env.example; never a real .env."""

import re
import secrets
from pathlib import Path

from . import settings

REPO = Path(__file__).resolve().parent.parent
KEY_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=")


def example_keys(example: Path = REPO / ".env.example") -> list[str]:
    return [m.group(1) for line in example.read_text().splitlines() if (m := KEY_LINE.match(line))]


def generate(overrides: dict[str, str] | None = None) -> dict[str, str]:
    values = {key: secrets.token_urlsafe(24) for key in example_keys()}
    values.update(overrides or {})
    return values


def write(values: dict[str, str], path: Path = settings.SECRETS_ENV) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
