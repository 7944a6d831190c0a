"""Preflight's checks of backups that read several keys, the host's groups, or the
off-site repository itself (the cipher passphrase)."""

import os
import subprocess
import sys
from pathlib import Path

import requests

from galion import s3, secrets
from galion.validators import Problem, needs_group

from .repository import STANZA


def required_secrets(data) -> list[str]:
    return ["BACKUPS_S3_ACCESS_KEY", "BACKUPS_S3_SECRET_KEY", "BACKUPS_CIPHER_PASSPHRASE"]


# Set to skip checks that contact remote services (unit tests of data checks, no network).
OFFLINE_VARIABLE = "GALION_PREFLIGHT_OFFLINE"
CIPHER_SECRETS = ("BACKUPS_S3_ACCESS_KEY", "BACKUPS_S3_SECRET_KEY", "BACKUPS_CIPHER_PASSPHRASE")


def opens_repository_file(encrypted: bytes, passphrase: str) -> bool:
    """Whether a pgBackRest repository file decrypts with this passphrase (pgBackRest
    writes what `openssl enc -aes-256-cbc -md sha1` reads: "Salted__", salt, AES-256-CBC)."""
    proc = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "env:GALION_PASS"],
        input=encrypted,
        capture_output=True,
        env=dict(os.environ, GALION_PASS=passphrase),
        timeout=30,
    )
    return proc.returncode == 0 and proc.stdout.startswith(b"[")


def _check_cipher(name: str, data, groups) -> list[Problem]:
    """pgBackRest cannot re-key a repository: a changed BACKUPS_CIPHER_PASSPHRASE would make
    every push, backup and restore of the existing off-site history fail."""
    if os.environ.get(OFFLINE_VARIABLE) or any(secrets.problem(k) for k in CIPHER_SECRETS):
        return []
    ca_file = data.get("backups_s3_ca_file")
    try:
        info = s3.get_object(
            data.get("backups_s3_check_address") or data.get("backups_s3_endpoint"),
            data.get("backups_s3_port"),
            data.get("backups_s3_region"),
            data.get("backups_s3_bucket"),
            f"{data.get('backups_s3_path')}/backup/{STANZA}/backup.info",
            secrets.get("BACKUPS_S3_ACCESS_KEY"),
            secrets.get("BACKUPS_S3_SECRET_KEY"),
            str(Path(ca_file).expanduser()) if ca_file else None,
        )
        opens = info is None or opens_repository_file(
            info, secrets.get("BACKUPS_CIPHER_PASSPHRASE")
        )
    except (requests.RequestException, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(
            f"preflight: warning: {name}: the off-site repository could not be read to check "
            f"BACKUPS_CIPHER_PASSPHRASE ({exc}); going on without that check",
            file=sys.stderr,
        )
        return []
    if opens:
        return []  # a new repository, or the right passphrase
    return [
        Problem(
            name,
            "secret BACKUPS_CIPHER_PASSPHRASE",
            "does not open the existing off-site repository (pgBackRest cannot re-key it)",
            "put the previous passphrase back; to change it, follow 'Changing the cipher "
            "passphrase' in docs/DISASTER_RECOVERY.md",
        )
    ]


def check_host(name: str, data, groups) -> list[Problem]:
    problems = _check_canary(name, data, groups) + _check_cipher(name, data, groups)
    if "db" not in groups:
        problems.append(
            Problem(
                name,
                "groups",
                "is in backups but not in db",
                "pgBackRest runs beside PostgreSQL: put the primary in backups",
            )
        )
    return problems


def check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    return needs_group(
        hosts, "backups", "db", "has no database to back up", "put the primary in group db"
    )


def _check_canary(name: str, data, groups) -> list[Problem]:
    wanted = data.get("backups_canary_database")
    names = [db.get("name") for db in data.get("postgres_databases") or [] if isinstance(db, dict)]
    if wanted is None or wanted in names:
        return []
    return [
        Problem(
            name,
            "backups_canary_database",
            f"{wanted!r} is not in postgres_databases",
            "name one of them, or None for the first",
        )
    ]
