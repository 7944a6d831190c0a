"""Bad data stops `pyinfra ... deploy.py` with one clear line, before any connection.

Each case runs the real CLI against a throwaway inventory whose host is a loopback
listener: the listener counts connections, so "no host touched" is measured.
"""

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from galion import secrets
from tests.unit.helpers import run_pyinfra

REPO = Path(__file__).resolve().parents[2]
GOOD_SECRET = "s3cr3t-value-for-the-preflight-tests"
ALL_GROUPS = ("app", "db", "edge", "backups")
# A monitoring host alerting by e-mail only (the cases' secrets are not webhook URLs).
E_MAIL_ONLY = {"monitoring_webhook_enabled": False}


class Listener:
    """A TCP listener on loopback that accepts, counts and closes connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _key_pair(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def operator_key(tmp_path_factory) -> Path:
    return _key_pair(tmp_path_factory.mktemp("key"), "operator")


@pytest.fixture(scope="module")
def public_key(operator_key) -> str:
    return Path(f"{operator_key}.pub").read_text().strip()


def run_case(
    tmp_path, listener, public_key, data=None, groups=ALL_GROUPS, secret=GOOD_SECRET, extra_hosts=()
):
    host_data = {
        "ssh_hostname": "127.0.0.1",
        "ssh_port": listener.port,
        "ssh_user": "deploy",
        "ssh_connect_retries": 0,
        "base_deploy_authorized_keys": [public_key],
        "base_mail_relay": "smtp.example.com:587",
        "base_mail_relay_user": "relay",
    }
    if extra_hosts:
        host_data["private_address"] = "10.0.0.1"
    host_data.update(data or {})
    lines = [f"_box = ('box', {host_data!r})"]
    members = {g: ["_box"] for g in groups}
    for i, (name, host_groups, *more) in enumerate(extra_hosts):
        own = {"ssh_hostname": "127.0.0.2", "private_address": f"10.0.0.{i + 2}"}
        own.update(more[0] if more else {})
        lines.append(f"_{name} = ('{name}', dict(_box[1], **{own!r}))")
        for g in host_groups:
            members.setdefault(g, []).append(f"_{name}")
    lines += [f"{g} = [{', '.join(m)}]" for g, m in members.items()]
    inventory = tmp_path / "case.py"
    inventory.write_text("\n".join(lines) + "\n")
    env_file = tmp_path / "case.env"
    values = {key: f"{GOOD_SECRET}-{i}" for i, key in enumerate(sorted(secrets.example_keys()))}
    if secret is None:
        del values["SMTP_RELAY_PASSWORD"]
    else:
        values["SMTP_RELAY_PASSWORD"] = secret
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {
        "PATH": "/usr/bin:/bin",
        "GALION_ENV_FILE": str(env_file),
        "HOME": str(tmp_path),
        # Data checks only: no off-site repository to read the cipher passphrase against.
        "GALION_PREFLIGHT_OFFLINE": "1",
    }
    proc = run_pyinfra(REPO, env, str(inventory), "deploy.py")
    problems = [line for line in proc.stderr.splitlines() if line.startswith("preflight:")]
    return proc, problems


CASES = {
    "missing secret": (dict(secret=None), "secret SMTP_RELAY_PASSWORD: missing"),
    "placeholder secret": (
        dict(secret="change-me"),
        "secret SMTP_RELAY_PASSWORD: still a placeholder",
    ),
    "short secret": (dict(secret="abc123"), "secret SMTP_RELAY_PASSWORD: shorter than 16"),
    "bad e-mail": (
        dict(data={"operator_email": "ops@"}),
        "operator_email: 'ops@' is not an e-mail",
    ),
    "bad CIDR": (
        dict(data={"base_ssh_trusted_cidrs": ["10.0.0.300/32"]}),
        "base_ssh_trusted_cidrs: ['10.0.0.300/32'] is not a list of CIDRs",
    ),
    "bad port": (dict(data={"base_ssh_port": 70000}), "base_ssh_port: 70000 is not a TCP port"),
    "bad firewall port": (
        dict(data={"base_firewall_ports_by_group": {"edge": ["99999/tcp"]}}),
        "base_firewall_ports_by_group:",
    ),
    "bad address": (
        dict(data={"ssh_hostname": "titan axe!"}),
        "ssh_hostname: 'titan axe!' is not an IP address or host name",
    ),
    "bad relay": (dict(data={"base_mail_relay": "smtp.example.com"}), "base_mail_relay:"),
    "no keys": (
        dict(data={"base_deploy_authorized_keys": []}),
        "base_deploy_authorized_keys: is empty",
    ),
    "not a key": (
        dict(data={"base_deploy_authorized_keys": ["ssh-ed25519 not*base64"]}),
        "base_deploy_authorized_keys: ssh-ed25519 key with invalid base64",
    ),
    "root as deploy user": (dict(data={"base_deploy_user": "root"}), "base_deploy_user: 'root'"),
    "unknown group": (dict(groups=("app", "edge", "dbs")), "group dbs: is not a role group"),
    "primary and replica": (
        dict(groups=("app", "edge", "db", "db_replica")),
        "groups: is in both db and db_replica",
    ),
    "replica without primary": (
        dict(groups=("app", "edge", "db_replica")),
        "group db_replica: has replicas but no primary",
    ),
    "edge without app": (dict(groups=("edge",)), "group edge: has nothing to proxy to"),
    "two primaries": (dict(extra_hosts=[("db2", ["db"])]), "group db: has more than one primary"),
    "secret with a quote": (
        dict(secret='abcdefgh"ijklmnopq'),
        "secret SMTP_RELAY_PASSWORD: holding whitespace, a quote",
    ),
    "eviction policy": (
        dict(data={"redis_maxmemory_policy": "lru"}),
        "redis_maxmemory_policy: 'lru'",
    ),
    "tiny memory budget": (
        dict(data={"postgres_memory_budget_mb": 100}),
        "postgres_memory_budget_mb: 100 is not a size in MB",
    ),
    "app without database": (
        dict(
            data={
                "app_env_stacks": [
                    {"name": "galion", "database": "nope", "redis_db": 0},
                    {"name": "galion_studio", "database": "galion_studio", "redis_db": 2},
                ]
            }
        ),
        "app_env_stacks: 'galion' uses database 'nope'",
    ),
    "port clash": (dict(data={"pgbouncer_port": 5432}), "are not three different ports"),
    "backups without db": (
        dict(groups=("app", "edge", "db", "backups"), extra_hosts=[("bk", ["backups"])]),
        "groups: is in backups but not in db",
    ),
    "archive timeout": (dict(data={"backups_archive_timeout": 0}), "backups_archive_timeout: 0"),
    "bucket name": (dict(data={"backups_s3_bucket": "Galion_Backups"}), "backups_s3_bucket:"),
    "acme over http": (
        dict(data={"nginx_tls_acme_directory": "http://acme.example/dir"}),
        "nginx_tls_acme_directory: 'http://acme.example/dir' is not an https://",
    ),
    "vhost with unknown upstream": (
        dict(
            data={
                "nginx_tls_vhosts": [
                    {
                        "name": "x.galion.app",
                        "aliases": [],
                        "upstream": "nope",
                        "kind": "api",
                        "csp": "",
                    }
                ]
            }
        ),
        "nginx_tls_vhosts:",
    ),
    "body size": (
        dict(data={"nginx_tls_client_max_body_size": "fifty"}),
        "nginx_tls_client_max_body_size:",
    ),
    "renamed nginx knob": (
        dict(data={"nginx_acme_directory": "https://acme.example/dir"}),
        "nginx_acme_directory: renamed to nginx_tls_acme_directory",
    ),
    "renamed app_env knob": (
        dict(data={"app_stacks": []}),
        "app_stacks: renamed to app_env_stacks (fix: rename it in your inventory)",
    ),
    "private address": (
        dict(data={"private_address": "db.internal"}),
        "private_address: 'db.internal' is not an IP address",
    ),
    "fleet host without a private address": (
        dict(extra_hosts=[("mon1", ["monitoring"], {"private_address": None, **E_MAIL_ONLY})]),
        "mon1: private_address: is missing, in an inventory of several hosts",
    ),
    "two hosts on one private address": (
        dict(
            extra_hosts=[("mon1", ["monitoring"], {"private_address": "10.0.0.1", **E_MAIL_ONLY})]
        ),
        "mon1: private_address: 10.0.0.1 is also box's",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_stops_before_any_connection(case, tmp_path, listener, public_key):
    kwargs, expected = CASES[case]
    proc, problems = run_case(tmp_path, listener, public_key, **kwargs)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "(fix: " in problems[0]
    assert "Traceback" not in proc.stderr
    assert listener.connections == 0


def test_good_data_passes_preflight_and_connects(tmp_path, listener, public_key):
    """Control: with sound data the same run gets as far as connecting."""
    proc, problems = run_case(tmp_path, listener, public_key)
    assert problems == []
    assert listener.connections >= 1


def test_a_key_list_without_the_login_key_stops_the_run(tmp_path, listener, public_key):
    """The list replaces the deploy user's keys: losing the login key locks the operator out."""
    other = _key_pair(tmp_path, "laptop-of-someone-else")
    proc, problems = run_case(tmp_path, listener, public_key, data={"ssh_key": str(other)})
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(problems) == 1, problems
    assert "base_deploy_authorized_keys: lacks the key this run logs in with" in problems[0]
    assert listener.connections == 0


def test_the_login_key_found_through_a_pub_file_entry_passes(tmp_path, listener, operator_key):
    """The same key given as a path to its .pub file counts; the run gets to connecting."""
    proc, problems = run_case(
        tmp_path, listener, f"{operator_key}.pub", data={"ssh_key": str(operator_key)}
    )
    assert problems == [], proc.stderr[-1500:]
    assert listener.connections >= 1


def test_a_knob_set_under_its_old_name_stops_the_run_with_the_new_name(
    tmp_path, listener, public_key
):
    """The role reads os_hardening_shell_idle_timeout: the operator's 600 would be lost."""
    proc, problems = run_case(
        tmp_path, listener, public_key, data={"hardening_shell_idle_timeout": 600}
    )
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert problems == [
        "preflight: box: hardening_shell_idle_timeout: renamed to "
        "os_hardening_shell_idle_timeout (fix: rename it in your inventory)"
    ]
    assert listener.connections == 0


def test_production_refuses_to_run_without_the_dead_mans_switch_unless_turned_off(
    tmp_path, listener
):
    """inventories/prod.py turns the heartbeat on: without ALERTMANAGER_HEARTBEAT_URL in
    .env preflight stops the run, and only `monitoring_heartbeat_enabled=False` (on
    purpose) lifts that refusal. The host is the loopback listener, never prod's."""
    values = {key: f"{GOOD_SECRET}-{i}" for i, key in enumerate(sorted(secrets.example_keys()))}
    del values["ALERTMANAGER_HEARTBEAT_URL"]
    env_file = tmp_path / "prod.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {
        "PATH": "/usr/bin:/bin",
        "GALION_ENV_FILE": str(env_file),
        "HOME": str(tmp_path),
        "GALION_PREFLIGHT_OFFLINE": "1",
    }
    here = ["--data", "ssh_hostname=127.0.0.1", "--data", f"ssh_port={listener.port}"]
    missing = "secret ALERTMANAGER_HEARTBEAT_URL: missing"

    def problems(*more: str) -> tuple[int, list[str]]:
        proc = run_pyinfra(REPO, env, *here, *more, "inventories/prod.py", "deploy.py")
        return proc.returncode, [
            line for line in proc.stderr.splitlines() if line.startswith("preflight:")
        ]

    rc, refused = problems()
    assert rc != 0 and any(missing in line for line in refused), refused
    _, turned_off = problems("--data", "monitoring_heartbeat_enabled=False")
    assert not any("ALERTMANAGER_HEARTBEAT_URL" in line for line in turned_off), turned_off
    # Both stopped in preflight (prod's key file is not in this HOME): no host touched.
    assert listener.connections == 0
