"""Base hardening, checked on the live host (operations/base/)."""

import subprocess
import time
from pathlib import Path

LISTENER = """
import socket, sys, time
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port)); s.listen(16); socks.append(s)
    except OSError:
        pass  # something real already listens there: it answers for us
time.sleep(40)
"""


def sshd_effective(node) -> dict[str, str]:
    out = node.host.check_output("sshd -T")
    return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines())}


def ssh_from_workstation(node, user: str, command: str) -> subprocess.CompletedProcess:
    from sandbox import state

    return subprocess.run(
        [
            "ssh",
            "-F",
            state.load()["ssh_config"],
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            f"{user}@{node.address}",
            command,
        ],
        text=True,
        capture_output=True,
        timeout=30,
    )


def in_container(node) -> bool:
    return node.host.run("systemd-detect-virt --container").stdout.strip() not in ("", "none")


def test_sshd_keys_only_and_no_root(node):
    cfg = sshd_effective(node)
    assert cfg["permitrootlogin"] == "no"
    assert cfg["passwordauthentication"] == "no"
    assert cfg["kbdinteractiveauthentication"] == "no"
    assert cfg["pubkeyauthentication"] == "yes"
    assert cfg["authenticationmethods"] == "publickey"
    assert cfg["maxauthtries"] == str(node.data["base_ssh_max_auth_tries"])
    assert cfg["logingracetime"] == str(node.data["base_ssh_login_grace_time"])
    assert cfg["maxsessions"] == str(node.data["base_ssh_max_sessions"])
    assert cfg["clientalivecountmax"] == str(node.data["base_ssh_client_alive_count_max"])
    assert cfg["tcpkeepalive"] == "no" and cfg["compression"] == "no"


def test_sshd_offers_only_the_chosen_host_keys(node):
    offered = sorted(
        line.split()[1]
        for line in node.host.check_output("sshd -T").splitlines()
        if line.startswith("hostkey ")
    )
    wanted = sorted(f"/etc/ssh/ssh_host_{t}_key" for t in node.data["base_ssh_host_key_types"])
    assert offered == wanted


def test_sshd_no_forwarding(node):
    cfg = sshd_effective(node)
    for key in (
        "allowtcpforwarding",
        "allowagentforwarding",
        "allowstreamlocalforwarding",
        "x11forwarding",
        "permittunnel",
        "gatewayports",
    ):
        assert cfg[key] == "no", key


def test_sshd_algorithms_are_the_preferred_ones(node):
    cfg = sshd_effective(node)
    for key, knob in (
        ("kexalgorithms", "base_ssh_kex_preference"),
        ("ciphers", "base_ssh_cipher_preference"),
        ("macs", "base_ssh_mac_preference"),
    ):
        live = cfg[key].split(",")
        assert live and set(live) <= set(node.data[knob]), key
    assert "chacha20-poly1305@openssh.com" in cfg["ciphers"]
    assert not any(
        "sha1" in a or "cbc" in a
        for a in cfg["kexalgorithms"].split(",")
        + cfg["ciphers"].split(",")
        + cfg["macs"].split(",")
    )


def test_root_login_refused_even_with_its_key(node):
    # The sandbox put the operator key in root's authorized_keys: only sshd refuses it.
    result = ssh_from_workstation(node, "root", "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_deploy_user_logs_in_and_sudoes_without_password(node):
    user = node.data["base_deploy_user"]
    result = ssh_from_workstation(node, user, "sudo -n id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "root"


def test_deploy_user_has_exactly_the_operator_keys(node):
    user = node.data["base_deploy_user"]
    keys = node.host.file(f"/home/{user}/.ssh/authorized_keys")
    assert keys.user == user and keys.mode == 0o600
    live = [line.strip() for line in keys.content_string.splitlines() if line.strip()]
    # What the inventory names, read here: a key, or a .pub file of keys.
    expected = []
    for entry in node.data["base_deploy_authorized_keys"]:
        path = Path(entry).expanduser()
        lines = path.read_text().splitlines() if path.is_file() else [entry]
        expected += [k.strip() for k in lines if k.strip() and not k.startswith("#")]
    assert expected and sorted(live) == sorted(expected)


def test_ufw_active_with_default_deny(node):
    status = node.host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming)" in status


def test_only_intended_ports_answer_from_another_host(node, probe):
    expected_open = {node.data["base_ssh_port"]}
    for group, ports in node.data["base_firewall_ports_by_group"].items():
        if group in node.groups:
            expected_open.update(int(p.split("/")[0]) for p in ports)
    closed = {8080, 5432, 6379, 9100, 3001}
    node.host.run(
        f"nohup timeout 45 python3 -c '{LISTENER}' "
        f"{' '.join(map(str, sorted((expected_open | closed) - {22})))} "
        ">/dev/null 2>&1 &"
    )
    time.sleep(1)
    try:
        answers = probe.tcp_ports(node.address, sorted(expected_open | closed))
        for port in sorted(expected_open):
            assert answers[port] == "open", port
        for port in sorted(closed):
            # Listening on the host (ours on every address, or a real service on the one
            # it binds, such as an exporter on the private address) but dropped by UFW.
            assert node.host.run(f"ss -Hltn 'sport = :{port}'").stdout.strip(), port
            assert answers[port] == "filtered", port
    finally:
        node.host.run("pkill -f 'time.sleep\\(40\\)' || true")


def test_ssh_is_rate_limited_per_source(node, probe):
    source = probe.extra[0]
    results = probe.tcp(
        node.address, node.data["base_ssh_port"], source=source, timeout=1.5, count=10
    )
    # ufw limit: the 6th new connection within 30 s and later ones are rejected.
    assert results[:5] == ["open"] * 5, results
    assert all(r != "open" for r in results[6:]), results
    # Another source is not affected.
    assert probe.tcp(node.address, node.data["base_ssh_port"]) == "open"


def test_failed_logins_get_the_source_banned(node, probe, tmp_path):
    source = probe.extra[1]
    key = tmp_path / "intruder"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    banned = ""
    try:
        for _ in range(node.data["base_fail2ban_maxretry"] + 1):
            probe.run(
                "ssh",
                "-b",
                source,
                "-i",
                str(key),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "IdentitiesOnly=yes",
                f"nosuchuser@{node.address}",
                "true",
                timeout=20,
            )
            banned = node.host.check_output("fail2ban-client status sshd")
            if source in banned:
                break
            time.sleep(1)
        for _ in range(20):
            if source in banned:
                break
            time.sleep(1)
            banned = node.host.check_output("fail2ban-client status sshd")
        assert source in banned, banned
        assert probe.tcp(node.address, node.data["base_ssh_port"], source=source) != "open"
        assert probe.tcp(node.address, node.data["base_ssh_port"]) == "open"
    finally:
        node.host.run(f"fail2ban-client set sshd unbanip {source}")


def test_fail2ban_jail_reads_the_journal_with_incremental_bans(node):
    assert node.host.service("fail2ban").is_running
    assert node.host.check_output("fail2ban-client get sshd maxretry") == str(
        node.data["base_fail2ban_maxretry"]
    )
    dump = node.host.check_output("fail2ban-client -d")
    assert "'sshd', 'systemd'" in dump or "['add', 'sshd', 'systemd']" in dump
    assert "bantime.increment" in dump or "'bantime.increment', 'true'" in dump


def test_unattended_security_upgrades(node):
    config = node.host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert f'DPkg::Lock::Timeout "{node.data["base_apt_lock_timeout"]}";' in config
    assert node.host.service("apt-daily-upgrade.timer").is_enabled
    dry = node.host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -m1 'Allowed origins'")
    assert "security" in dry.stdout.lower(), dry.stdout


def test_sysctl_hardening_live(node):
    forwarding = (
        "1" if any(g in node.groups for g in node.data["base_ip_forwarding_groups"]) else "0"
    )
    live = {
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.rp_filter": "1",
        "net.ipv4.ip_forward": forwarding,
    }
    for key, value in live.items():
        assert node.host.sysctl(key) == int(value), key
    conf = node.host.file("/etc/sysctl.d/90-galion-hardening.conf").content_string
    assert "kernel.kptr_restrict = 2" in conf
    if not in_container(node):
        assert node.host.sysctl("kernel.kptr_restrict") == 2


def test_journal_is_persistent_and_capped(node):
    machine_id = node.host.file("/etc/machine-id").content_string.strip()
    assert node.host.file(f"/var/log/journal/{machine_id}").is_directory
    merged = node.host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert f"SystemMaxUse={node.data['base_journald_max_use']}" in merged


def test_time_sync_enabled(node):
    if node.host.exists("chronyd"):
        assert node.host.service("chrony").is_enabled
    else:
        assert node.host.service("systemd-timesyncd").is_enabled


def test_staged_files_and_upload_temps_are_gone(node):
    assert node.host.run("find /etc -name '*.galion-new' | grep -q .").rc == 1
    assert node.host.run("find /var/tmp -path '*galion-upload*' -type f | grep -q .").rc == 1
