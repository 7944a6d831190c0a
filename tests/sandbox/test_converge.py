"""Converging the sandbox again: nothing changes, no secret leaks, bad config never goes live.

Runs after tests/roles (the test command's order), on a converged sandbox.
"""

import hashlib
import secrets as random_secrets
import urllib.parse

import pytest

from sandbox.converge import converge, pyinfra

SECRET_FILE = "/etc/msmtprc"

# Runs on the host as root. The secret is read there, never put on a command line: sudo
# logs command lines to the journal, and a test must not leak what it checks for.
FIND_SECRET = r"""
import hashlib, os, sys
value = next(l.split(None, 1)[1].strip() for l in open("/etc/msmtprc") if l.startswith("password"))
if sys.argv[1] == "digest":
    print(hashlib.sha256(value.encode()).hexdigest()); sys.exit()
needle = value.encode()
for top in ("/etc", "/home", "/root", "/tmp", "/var/tmp", "/var/log", "/var/lib/galion"):
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            try:
                if os.path.isfile(p) and not os.path.islink(p) and needle in open(p, "rb").read():
                    print(p)
            except OSError:
                pass
"""


def _on_host(node, mode: str) -> list[str]:
    return node.host.check_output(f"python3 -c '{FIND_SECRET}' {mode}").split()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_second_converge_changes_nothing():
    result = converge().check()
    assert result.changed == [], result.changed


def _sha(node, path):
    return node.host.check_output(f"sha256sum {path}").split()[0]


SECRET_FILES = [
    "/etc/msmtprc",
    "/etc/pgbouncer/userlist.txt",
    "/etc/redis/users.acl",
    "/etc/galion/env/galion.env",
    "/etc/galion/env/galion_studio.env",
    "/etc/prometheus/alertmanager.yml",
    "/etc/default/prometheus-postgres-exporter",
    "/etc/default/prometheus-redis-exporter",
    "/etc/galion/pgbouncer-metrics.env",
]


@pytest.mark.once
def test_changed_secrets_never_printed_by_dry_run_diff_or_json(env_with, sandbox_secrets, node):
    # Every secret but the cipher passphrase, which preflight refuses to change (below).
    new_values = {
        key: random_secrets.token_urlsafe(24)
        for key in sandbox_secrets
        if key != "BACKUPS_CIPHER_PASSPHRASE"
    }
    # A webhook URL stays a URL (preflight refuses anything else), at the sandbox's own
    # receiver address: its secret part is the path.
    webhook = urllib.parse.urlsplit(sandbox_secrets["ALERTMANAGER_WEBHOOK_URL"])
    new_values["ALERTMANAGER_WEBHOOK_URL"] = webhook._replace(
        path="/" + random_secrets.token_urlsafe(24)
    ).geturl()
    env = env_with(**new_values)
    secret_values = list(sandbox_secrets.values()) + list(new_values.values())
    before = {path: _sha(node, path) for path in SECRET_FILES}

    outputs = []
    for args in (["--dry", "--diff"], ["--dry", "--diff", "--json"], ["--dry", "--diff", "-vv"]):
        proc = pyinfra(*args, "inventories/sandbox.py", "deploy.py", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout + proc.stderr)
    for path in SECRET_FILES:
        assert f"Will modify {path} (secret: content not shown)" in outputs[0]
    for out in outputs:
        leaked = [v for v in secret_values if v in out]
        assert leaked == []
    assert {path: _sha(node, path) for path in SECRET_FILES} == before  # --dry changed nothing

    # Executing with --diff prints diffs a second time: still nothing.
    proc = pyinfra("-y", "--diff", "inventories/sandbox.py", "deploy.py", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [v for v in secret_values if v in proc.stdout + proc.stderr] == []
    assert all(_sha(node, path) != before[path] for path in SECRET_FILES)
    assert _on_host(node, "digest") == [_digest(new_values["SMTP_RELAY_PASSWORD"])]

    # Back to the sandbox's values; the files return to what they were.
    converge().check()
    assert {path: _sha(node, path) for path in SECRET_FILES} == before


@pytest.mark.once
def test_a_changed_cipher_passphrase_stops_the_run_before_connecting(env_with):
    """pgBackRest cannot re-key repo2: preflight reads the off-site backup.info and
    refuses a passphrase that does not open it, before any host is touched."""
    env = env_with(BACKUPS_CIPHER_PASSPHRASE=random_secrets.token_urlsafe(32))
    proc = pyinfra("-y", "inventories/sandbox.py", "deploy.py", env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        "secret BACKUPS_CIPHER_PASSPHRASE: does not open the existing off-site repository"
        in proc.stderr
    )
    assert "Connected" not in proc.stdout + proc.stderr


@pytest.mark.once
def test_debug_inventory_shows_no_secret(sandbox_secrets):
    proc = pyinfra("inventories/sandbox.py", "debug-inventory")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for value in sandbox_secrets.values():
        assert value not in proc.stdout + proc.stderr


def test_secret_file_private_and_only_copy(sandbox_secrets, node):
    f = node.host.file(SECRET_FILE)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert _on_host(node, "digest") == [_digest(sandbox_secrets["SMTP_RELAY_PASSWORD"])]
    # Journals included: nothing logged the value, no upload left a copy behind. The
    # one other copy is Alertmanager's, which mails through the same relay.
    copies = [SECRET_FILE]
    if "monitoring" in node.groups:
        copies.append("/etc/prometheus/alertmanager.yml")
        f = node.host.file(copies[-1])
        assert (f.user, f.group, f.mode) == ("root", "prometheus", 0o640)
    assert sorted(_on_host(node, "find")) == sorted(copies)


# The refusal is config_file's, the same on every distro; each distro's sshd reading the
# live config (sshd -T) is checked on both by tests/roles/test_base.py.
@pytest.mark.once
def test_invalid_sshd_config_fails_the_run_and_keeps_the_live_one(node):
    live = "/etc/ssh/sshd_config.d/00-galion-hardening.conf"
    before = _sha(node, live)
    result = converge("--data", "base_ssh_max_startups=not-a-number")
    assert result.returncode != 0 or result.failed_hosts
    assert "validation failed, live file untouched" in result.stderr
    assert _sha(node, live) == before
    assert not node.host.file(live + ".galion-new").exists
    assert node.host.service("ssh").is_running
    # The next good run validates again and changes nothing.
    assert converge().check().changed == []
