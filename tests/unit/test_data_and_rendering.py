""".env.example coverage and what the base role renders (no hosts); knob hygiene is in
test_roles.py."""

import re
import subprocess
from pathlib import Path

import pytest

from galion import secrets
from galion.ops import render
from operations import base

REPO = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_secret_the_code_asks_for():
    asked = set()
    scanned = [p for d in ("operations", "galion", "actions") for p in (REPO / d).rglob("*.py")]
    for path in scanned:
        asked.update(re.findall(r'secrets\.get\("([A-Z0-9_]+)"\)', path.read_text()))
        # Not a dict key (`"REDIS_PASSWORD": ...`): that names a program's variable.
        asked.update(
            re.findall(
                r'"([A-Z][A-Z0-9_]+_(?:PASSWORD|SECRET|KEY|PASSPHRASE))"(?!\s*:)', path.read_text()
            )
        )
    assert asked, "no secret found: the scan is broken"
    assert asked <= secrets.example_keys()


def test_env_example_values_are_all_placeholders():
    for line in (REPO / ".env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            assert secrets.PLACEHOLDER.match(line.split("=", 1)[1]), line


@pytest.mark.parametrize(
    "value,ok",
    [
        ("change-me", False),
        ("", False),
        ("<generate>", False),
        ("short", False),
        ("x" * 8 + "Y" * 8, True),
    ],
)
def test_secret_problem_detection(monkeypatch, tmp_path, value, ok):
    env = tmp_path / ".env"
    env.write_text(f"SMTP_RELAY_PASSWORD={value}\n")
    monkeypatch.setenv("GALION_ENV_FILE", str(env))
    monkeypatch.delenv("SMTP_RELAY_PASSWORD", raising=False)
    secrets.reset_cache()
    try:
        assert (secrets.problem("SMTP_RELAY_PASSWORD") is None) == ok
    finally:
        secrets.reset_cache()


def _data(**over):
    knobs: dict = {}
    exec((REPO / "group_data" / "all.py").read_text(), knobs)
    data = {k: v for k, v in knobs.items() if not k.startswith("_")}
    data.update(over)
    return data


def test_firewall_rules_follow_groups_and_print_like_ufw():
    data = _data(base_ssh_trusted_cidrs=["10.77.0.1/32", "192.0.2.0/24"])
    prepend, rules = base.firewall.firewall_rules(data, {"edge", "app"})
    assert prepend[0].startswith("allow from 10.77.0.1 to any port 22 proto tcp")
    assert prepend[1].startswith("allow from 192.0.2.0/24 ")
    assert rules[0] == "limit 22/tcp comment 'galion: ssh'"
    assert "allow 443/tcp comment 'galion: edge'" in rules
    _, db_rules = base.firewall.firewall_rules(data, {"db"})
    assert db_rules == ["limit 22/tcp comment 'galion: ssh'"]


def test_while_ssh_moves_both_ports_are_open_to_the_same_sources():
    data = _data(base_ssh_port=2222, base_ssh_trusted_cidrs=["10.77.0.1/32"])
    prepend, rules = base.firewall.firewall_rules(data, {"db"}, [22, 2222])
    assert [r.split(" proto")[0] for r in prepend] == [
        "allow from 10.77.0.1 to any port 22",
        "allow from 10.77.0.1 to any port 2222",
    ]
    assert rules == ["limit 22/tcp comment 'galion: ssh'", "limit 2222/tcp comment 'galion: ssh'"]
    assert base.firewall.firewall_rules(data, {"db"})[1] == ["limit 2222/tcp comment 'galion: ssh'"]


def test_pyinfra_connects_on_the_knobs_port_unless_the_run_says_otherwise():
    from galion import connection

    assert connection.login_port({"base_ssh_port": 2222}) == 2222
    assert connection.login_port({"base_ssh_port": 2222, "ssh_port": 22}) == 22
    assert connection.login_port({}) == 22
    assert connection.moving_from({"base_ssh_port": 2222, "ssh_port": 22}) == 22
    assert connection.moving_from({"base_ssh_port": 2222, "ssh_port": 2222}) is None
    assert connection.moving_from({"base_ssh_port": 2222}) is None


def test_ip_forwarding_only_on_docker_hosts():
    assert base.kernel.sysctl_hardening(_data(), {"app"})["net.ipv4.ip_forward"] == 1
    assert base.kernel.sysctl_hardening(_data(), {"db", "edge"})["net.ipv4.ip_forward"] == 0


def test_sshd_dropin_renders_every_setting():
    text = render(
        "base/etc/ssh/sshd_config.d/00-galion-hardening.conf.j2",
        ports=[22, 2222],
        host_key_types=["ed25519", "rsa"],
        permit_root_login="no",
        max_auth_tries=3,
        login_grace_time=30,
        max_startups="10:30:60",
        client_alive_interval=300,
        client_alive_count_max=2,
        max_sessions=2,
        kex=["curve25519-sha256"],
        ciphers=["aes256-gcm@openssh.com"],
        macs=["hmac-sha2-512-etm@openssh.com"],
    )
    assert "PermitRootLogin no\n" in text and "PasswordAuthentication no\n" in text
    assert "KexAlgorithms curve25519-sha256\n" in text
    assert "Port 22\nPort 2222\n" in text
    assert "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_rsa_key\n" in text
    assert "ecdsa" not in text
    assert "{{" not in text and "{%" not in text


def test_authorized_keys_reads_pub_files(tmp_path):
    pub = tmp_path / "k.pub"
    pub.write_text("# comment\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8 op@laptop\n")
    keys = base.users.authorized_keys(
        {"base_deploy_authorized_keys": [str(pub), "ssh-rsa AAAAB3 x"]}
    )
    assert keys == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8 op@laptop", "ssh-rsa AAAAB3 x"]


def test_full_and_differential_backups_never_share_a_day():
    from operations import backups

    full_day = backups.KNOBS["backups_full_schedule"].default.split()[0]
    diff_days = backups.KNOBS["backups_diff_schedule"].default.split()[0]
    week = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    first, last = diff_days.split("..")
    assert full_day in week and full_day not in week[week.index(first) : week.index(last) + 1]


def test_production_pins_its_postgres_major_and_memory_budget():
    text = (REPO / "inventories" / "prod.py").read_text()
    assert re.search(r'"postgres_version": \d+,', text)
    assert re.search(r'"postgres_memory_budget_mb": \d+,', text)


def test_verifying_production_reuses_one_ssh_connection_per_host(tmp_path):
    from tests.inventory import connection_reuse_config

    text = connection_reuse_config(tmp_path).read_text()
    assert text.startswith("Include ~/.ssh/config\n")
    assert "ControlMaster auto" in text and f"ControlPath {tmp_path}/cm-%C" in text
    assert "ControlPersist" in text
    # ssh itself accepts it (-G parses the config and prints the result, no connection).
    out = subprocess.run(
        ["ssh", "-F", str(tmp_path / "ssh_config"), "-G", "titanaxe"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "controlmaster auto" in out and f"controlpath {tmp_path}/cm-" in out


@pytest.mark.parametrize("flush", [1, 0])
def test_access_log_is_buffered_only_with_a_flush_time(flush):
    http = render(
        "nginx_tls/etc/nginx/conf.d/00-galion-http.conf.j2",
        client_max_body_size="50m",
        access_log_flush=flush,
        brotli=False,
        cloudflare=False,
        cloudflare_ranges=[],
        rate_api=100,
        rate_general=200,
        rate_limit_exempt=[],
        cache_api_size="1g",
        cache_static_size="500m",
    )
    proxy = render(
        "app_proxy/etc/nginx/conf.d/00-galion-app-proxy.conf.j2",
        upstreams=[("galion_api", 8001)],
        servers_dir="/etc/nginx/galion-upstreams",
        listen="10.0.0.2",
        status_listen="10.0.0.2",
        status_port=8081,
        metrics_path="/metrics",
        metrics_upstreams=["galion_api"],
        access_log_flush=flush,
    )
    wanted = (
        "access_log /var/log/nginx/access.log galion buffer=64k flush=1s;\n"
        if flush
        else "access_log /var/log/nginx/access.log galion;\n"
    )
    for text in (http, proxy):
        assert [
            line
            for line in text.splitlines(True)
            if line.startswith("access_log /var/log/nginx/access.log")
        ] == [wanted]
