"""Base hardening for every host: deploy user, SSH, UFW, fail2ban, upgrades, sysctl, logs, time."""

import ipaddress
import re
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import apt, files, python, server, systemd
from pyinfra.operations.util import any_changed

from galion import commands, connection, keys, secrets, topology
from galion.facts import (
    ImageUserAccess,
    OpensshAlgorithms,
    PathExists,
    SystemdUnitEnabled,
    in_container,
)
from galion.ops import config_file, render, sysctl_values, ufw_rules
from galion.preflight import (
    DURATION,
    SIZE,
    UNIX_USER,
    Problem,
    int_between,
    is_host_port,
    is_networks,
    is_port,
    is_port_proto,
    matches,
    split_host_port,
)
from galion.role import Role

# Written once the deploy user has logged in and used sudo (the current run connected
# as it): from then on root may not log in over SSH at all.
DEPLOY_PROVEN_MARKER = "/var/lib/galion/deploy-user-proven"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-galion-hardening.conf"
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

KNOBS = {
    # --- deploy user ---
    # Login user for every run after the first; passwordless sudo because pyinfra runs `sudo -n`.
    "base_deploy_user": "deploy",
    # Public keys allowed to log in as the deploy user (exact set: others are removed).
    # Set these in the inventory; preflight refuses an empty list.
    "base_deploy_authorized_keys": [],
    # Users a cloud image logs in as first (Ubuntu's "ubuntu", Debian's "admin" and
    # "debian"), with passwordless sudo. Once the deploy user is proven they are closed:
    # keys emptied, sudo rules removed, account expired. [] keeps them as they are.
    "base_image_users_to_lock": ["ubuntu", "debian", "admin"],
    # --- SSH ---
    # Port sshd listens on (UFW opens it everywhere); pyinfra connects on it too. To move
    # it, change it and run once with --data ssh_port=<the old port> (README "Moving SSH").
    "base_ssh_port": 22,
    # Host keys sshd offers: ssh-audit fails ECDSA (NIST P-256). Clients that know only the
    # host's ECDSA key ask once to accept the ED25519 one (README "Host keys").
    "base_ssh_host_key_types": ["ed25519", "rsa"],
    # Unanswered keepalives (each after base_ssh_client_alive_interval) before sshd drops a session.
    "base_ssh_client_alive_count_max": 2,
    # Sessions (channels) open at once per SSH connection. pyinfra's SFTP channel stays
    # open and closed command channels linger: 2 (Lynis' wish) failed converges; 10 is
    # OpenSSH's default.
    "base_ssh_max_sessions": 10,
    # Failed authentications per connection before sshd drops it (CIS 5.2.7 says <= 4).
    "base_ssh_max_auth_tries": 3,
    # Seconds an unauthenticated connection may stay (CIS 5.2.16 says <= 60).
    "base_ssh_login_grace_time": 30,
    # Seconds between keepalives; with ClientAliveCountMax 3 a dead client goes after 15 min.
    "base_ssh_client_alive_interval": 300,
    # Concurrent unauthenticated connections: start:rate:full (OpenSSH default is 10:30:100).
    "base_ssh_max_startups": "10:30:60",
    # Preferred algorithms, strongest first; each list is cut to what the host's OpenSSH
    # supports (`ssh -Q`), so one list serves Debian 12, Debian 13 and Ubuntu 24.04.
    "base_ssh_kex_preference": [
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group16-sha512",
        # No diffie-hellman-group-exchange-sha256: ssh-audit warns about its 2048-bit
        # moduli, and probing them costs scanners (and UFW's rate limit) extra connections.
    ],
    # Ciphers: AEAD first; CTR modes stay for older clients (paramiko); no CBC.
    "base_ssh_cipher_preference": [
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ],
    # MACs: encrypt-then-MAC first; no SHA-1, no 64-bit tags.
    "base_ssh_mac_preference": [
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-512",
        "hmac-sha2-256",
    ],
    # --- firewall ---
    # Sources exempt from the SSH rate limit (an office or VPN address); empty in production.
    "base_ssh_trusted_cidrs": [],
    # Ports opened per inventory group, beyond SSH which is open (rate-limited) everywhere.
    "base_firewall_ports_by_group": {"edge": ["80/tcp", "443/tcp"]},
    # --- fail2ban ---
    # First ban length; each repeat offence doubles it (bantime.increment) up to the maximum.
    "base_fail2ban_bantime": "1h",
    # Longest ban: the plan's "auto-ban for 1-7 days".
    "base_fail2ban_bantime_max": "7d",
    # Window in which failures are counted.
    "base_fail2ban_findtime": "10m",
    # Failures within that window that ban the source.
    "base_fail2ban_maxretry": 5,
    # Never banned (loopback; add the monitoring or office address if it probes SSH).
    "base_fail2ban_ignoreip": ["127.0.0.1/8", "::1"],
    # --- unattended upgrades ---
    # Reboot by itself when an upgrade needs it (kernel, libc); off: the on-call reboots.
    "base_unattended_reboot": False,
    # When such a reboot may happen (host's local time), if enabled.
    "base_unattended_reboot_time": "04:00",
    # --- outgoing mail ---
    # SMTP relay for unattended-upgrades reports (host:port, STARTTLS); empty = no mail relay.
    # Its password is the secret SMTP_RELAY_PASSWORD.
    "base_mail_relay": "",
    # Login user at the relay.
    "base_mail_relay_user": "",
    # --- kernel and logs ---
    # Hosts in these groups run Docker, which publishes ports through forwarding: keep
    # net.ipv4.ip_forward on there, off everywhere else.
    "base_ip_forwarding_groups": ["app"],
    # Apply sysctl hardening (file always written; live values where the host allows).
    "base_sysctl_enabled": True,
    # Cap on the persistent journal (journald's SystemMaxUse); the plan budgets 2-5 GB for logs.
    "base_journald_max_use": "1G",
    # Seconds apt waits for another apt/dpkg (a fresh box's apt-daily timer) before failing.
    "base_apt_lock_timeout": 600,
}


def required_secrets(data) -> list[str]:
    return ["SMTP_RELAY_PASSWORD"] if data.get("base_mail_relay") else []


def _check_host(name: str, data, groups) -> list[Problem]:
    return _check_login_port(name, data) + _check_keys(name, data, groups)


def _check_login_port(name: str, data) -> list[Problem]:
    """pyinfra's own ssh_port (set only while moving SSH): a port, if given."""
    port = data.get("ssh_port")
    if port is None or is_port(port):
        return []
    fix = "leave it unset (pyinfra uses base_ssh_port), or the port sshd listens on today"
    return [Problem(name, "ssh_port", f"{port!r} is not a TCP port (1-65535)", fix)]


def _check_keys(name: str, data, groups) -> list[Problem]:
    entries = data.get("base_deploy_authorized_keys")
    if not isinstance(entries, list) or not entries:
        return [
            Problem(
                name,
                "base_deploy_authorized_keys",
                "is empty",
                "list the operator's public key or its .pub file",
            )
        ]
    problems = []
    for entry in entries:
        reason = keys.entry_problem(entry)
        if reason:
            problems.append(
                Problem(
                    name,
                    "base_deploy_authorized_keys",
                    reason,
                    "give `ssh-ed25519 AAAA...` or a path to a .pub file",
                )
            )
    if problems:
        return problems
    # The list replaces the deploy user's keys: without the key this run logs in with,
    # the run would succeed and lock its operator out for good.
    login = keys.login_key_blob(data.get("ssh_key")) if data.get("ssh_key") else None
    if login and login not in {keys.blob(line) for line in authorized_keys(data)}:
        problems.append(
            Problem(
                name,
                "base_deploy_authorized_keys",
                f"lacks the key this run logs in with ({data.get('ssh_key')}): the converge would "
                "lock you out",
                f"add {data.get('ssh_key')}.pub to the list (keep it while you "
                "still log in with that key)",
            )
        )
    return problems


def _firewall_ports_ok(value) -> bool:
    from operations import known_groups  # the groups are known once every role is loaded

    groups = set(known_groups())
    return isinstance(value, dict) and all(
        g in groups and isinstance(ports, list) and all(is_port_proto(p) for p in ports)
        for g, ports in value.items()
    )


ROLE = Role(
    groups=(),
    order=10,
    knob_prefixes=("base_",),
    required_secrets=required_secrets,
    check_host=_check_host,
    checks=(
        (
            "base_image_users_to_lock",
            lambda v: isinstance(v, list) and all(matches(UNIX_USER)(u) for u in v),
            "is not a list of user names",
            'e.g. ["ubuntu"], or [] to leave image users alone',
        ),
        (
            "base_deploy_user",
            lambda v: matches(UNIX_USER)(v) and v != "root",
            "is not a valid non-root Unix user name",
            "use lowercase letters, digits, - or _, e.g. deploy",
        ),
        ("base_ssh_port", is_port, "is not a TCP port (1-65535)", "use 22 unless you moved SSH"),
        (
            "base_ssh_host_key_types",
            lambda v: isinstance(v, list) and v and set(v) <= {"ed25519", "rsa", "ecdsa"},
            "is not a non-empty list of ed25519, rsa, ecdsa",
            'use ["ed25519", "rsa"]',
        ),
        ("base_ssh_client_alive_count_max", int_between(1, 10), "is not between 1 and 10", "use 2"),
        ("base_ssh_max_sessions", int_between(4, 64), "is not between 4 and 64", "use 10"),
        ("base_ssh_max_auth_tries", int_between(1, 10), "is not between 1 and 10", "use 3"),
        (
            "base_ssh_trusted_cidrs",
            is_networks,
            "is not a list of CIDRs",
            "write addresses like 203.0.113.7/32, or leave the list empty",
        ),
        (
            "base_fail2ban_ignoreip",
            is_networks,
            "is not a list of addresses or CIDRs",
            "write entries like 127.0.0.1/8",
        ),
        (
            "base_firewall_ports_by_group",
            _firewall_ports_ok,
            "is not {role group: ['PORT/tcp', ...]}",
            "e.g. {'edge': ['80/tcp', '443/tcp']}",
        ),
        (
            "base_fail2ban_bantime",
            matches(DURATION),
            "is not a duration",
            "use a number with s, m, h, d or w, e.g. 1h",
        ),
        (
            "base_fail2ban_bantime_max",
            matches(DURATION),
            "is not a duration",
            "use a number with s, m, h, d or w, e.g. 7d",
        ),
        (
            "base_fail2ban_findtime",
            matches(DURATION),
            "is not a duration",
            "use a number with s, m, h, d or w, e.g. 10m",
        ),
        ("base_fail2ban_maxretry", int_between(1, 100), "is not between 1 and 100", "use 5"),
        (
            "base_journald_max_use",
            matches(SIZE),
            "is not a size",
            "use a number with K, M, G or T, e.g. 1G",
        ),
        ("base_unattended_reboot_time", matches(TIME_OF_DAY), "is not HH:MM", "e.g. 04:00"),
        (
            "base_mail_relay",
            lambda v: v == "" or is_host_port(v),
            "is not host:port",
            'e.g. smtp.eu.mailgun.org:587, or "" for no relay',
        ),
    ),
)


# ssh.socket (Ubuntu 24.04) takes a new port only after a daemon-reload and a restart.
SSH_SOCKET_RELOAD = ["systemctl daemon-reload", "systemctl restart ssh.socket"]
SSHD_RELOAD = "systemctl try-reload-or-restart ssh.service"


def sshd_validate_command() -> str:
    """Validate the staged drop-in together with the live main config: a temporary main
    file includes the staged drop-in first, then everything the live one includes."""
    return (
        "mkdir -p /run/sshd && t=$(mktemp) && "
        '{ echo "Include {staged}"; cat /etc/ssh/sshd_config; } > $t && '
        "sshd -t -f $t; r=$?; rm -f $t; exit $r"
    )


def authorized_keys(data) -> list[str]:
    """The deploy user's keys: entries are public keys or paths to .pub files (read here)."""
    return [
        line
        for entry in data.get("base_deploy_authorized_keys") or []
        for line in keys.key_lines(entry)
    ]


def sysctl_hardening(data, groups) -> dict[str, int]:
    forwarding = int(any(g in groups for g in data.get("base_ip_forwarding_groups", [])))
    return {
        # Spoofed sources, redirects and source routing: a server routes nothing by them.
        "net.ipv4.conf.all.rp_filter": 1,
        "net.ipv4.conf.default.rp_filter": 1,
        "net.ipv4.conf.all.accept_redirects": 0,
        "net.ipv4.conf.default.accept_redirects": 0,
        "net.ipv4.conf.all.secure_redirects": 0,
        "net.ipv4.conf.default.secure_redirects": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.default.send_redirects": 0,
        "net.ipv4.conf.all.accept_source_route": 0,
        "net.ipv4.conf.default.accept_source_route": 0,
        "net.ipv6.conf.all.accept_redirects": 0,
        "net.ipv6.conf.default.accept_redirects": 0,
        "net.ipv6.conf.all.accept_source_route": 0,
        "net.ipv4.icmp_echo_ignore_broadcasts": 1,
        "net.ipv4.icmp_ignore_bogus_error_responses": 1,
        "net.ipv4.tcp_syncookies": 1,
        "net.ipv4.tcp_rfc1337": 1,
        # Docker hosts publish ports through forwarding; everything else forwards nothing.
        "net.ipv4.ip_forward": forwarding,
        # (log_martians is left to UFW, whose sysctl.conf sets it at every ufw start.)
        "kernel.kptr_restrict": 2,
        "kernel.dmesg_restrict": 1,
        "kernel.unprivileged_bpf_disabled": 1,
        "kernel.randomize_va_space": 2,
        "fs.protected_hardlinks": 1,
        "fs.protected_symlinks": 1,
        "fs.protected_fifos": 2,
        "fs.protected_regular": 2,
        "fs.suid_dumpable": 0,
    }


def _ufw_source(cidr: str) -> str:
    """A source as ufw prints it back: a single address without /32 (/128)."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def firewall_rules(data, groups, ssh_ports=None, peers=()) -> tuple[list[str], list[str]]:
    """(prepend, rules) in the form `ufw show added` prints them. `ssh_ports`: the ports SSH
    is open on (default the `base_ssh_port` knob; two while SSH moves). `peers`: (port,
    address, what) of the other hosts that use a service here (galion/topology.py)."""
    ssh_ports = ssh_ports or [data.get("base_ssh_port")]
    prepend = [
        f"allow from {_ufw_source(cidr)} to any port {port} proto tcp comment 'galion: trusted ssh'"
        for port in ssh_ports
        for cidr in data.get("base_ssh_trusted_cidrs") or []
    ]
    rules = [f"limit {port}/tcp comment 'galion: ssh'" for port in ssh_ports]
    for group, ports in (data.get("base_firewall_ports_by_group") or {}).items():
        if group in groups:
            rules.extend(f"allow {p} comment 'galion: {group}'" for p in ports)
    if {"app", "db"} <= set(groups):
        # The single box: its app containers reach PgBouncer and Redis on the bridge.
        network = ipaddress.ip_interface(data.get("docker_bridge_address")).network
        rules.extend(
            f"allow from {network} to any port {data.get(key)} proto tcp "
            "comment 'galion: app containers'"
            for key in ("pgbouncer_port", "redis_port")
        )
    rules.extend(
        f"allow from {_ufw_source(address)} to any port {port} proto tcp comment 'galion: {what}'"
        for port, address, what in peers
    )
    return prepend, rules


def _apt_lock_timeout():
    config_file(
        name="Wait for the apt lock instead of failing",
        dest="/etc/apt/apt.conf.d/90galion-lock-timeout",
        content=render(
            "base/etc/apt/apt.conf.d/90galion-lock-timeout.j2",
            timeout=host.data.base_apt_lock_timeout,
        ),
    )


def _packages():
    wanted = [
        "sudo",
        "openssh-server",
        "ufw",
        "fail2ban",
        "python3-systemd",
        "unattended-upgrades",
        "ca-certificates",
    ]
    if not host.get_fact(PathExists, path="/usr/sbin/chronyd"):
        wanted.append("systemd-timesyncd")
    if host.data.base_mail_relay:
        wanted.append("msmtp-mta")
    apt.packages(
        name="Install base packages",
        packages=wanted,
        update=True,
        cache_time=3600,
        no_recommends=True,
    )


def _deploy_user():
    user = host.data.base_deploy_user
    server.user(
        name=f"Deploy user {user} with the operator's keys",
        user=user,
        shell="/bin/bash",
        create_home=True,
        public_keys=authorized_keys(host.data),
        delete_keys=True,
    )
    config_file(
        name=f"Passwordless sudo for {user}",
        dest="/etc/sudoers.d/90-galion-deploy",
        content=render("base/etc/sudoers.d/90-galion-deploy.j2", user=user),
        mode="440",
        validate="visudo -cqf {staged}",
    )
    # Connected as the deploy user with sudo working: it is proven, root can go.
    if host.data.get("ssh_user") == user:
        files.directory(
            name="State directory of galion-infra",
            path=str(Path(DEPLOY_PROVEN_MARKER).parent),
            mode="755",
        )
        files.file(
            name="Record that the deploy user logs in and sudoes",
            path=DEPLOY_PROVEN_MARKER,
            mode="644",
        )


def lock_image_user_command(user: str) -> str:
    """Close a cloud image's first-login user: no keys, no sudo rule, account expired
    (sshd's PAM account check then refuses it, keys or not)."""
    return (
        f'h=$(getent passwd {user} | cut -d: -f6) && {{ [ ! -f "$h/.ssh/authorized_keys" ] || '
        f': > "$h/.ssh/authorized_keys"; }} && '
        f"for f in $(grep -lsE '^[[:space:]]*{user}[[:space:]]' /etc/sudoers.d/*); do "
        # Only a file about this user alone goes (cloud-init's); one that also holds other
        # rules stays as it is: editing sudoers line by line risks a broken sudo.
        f"if grep -vE '^[[:space:]]*(#|$)' \"$f\" | grep -qvE '^[[:space:]]*{user}[[:space:]]'; "
        f'then echo "galion: $f also holds other rules: left in place" >&2; '
        f'else rm -f "$f"; fi; done && visudo -cq && usermod -L --expiredate 1 {user}'
    )


def _image_users():
    data = host.data
    if data.get("ssh_user") != data.base_deploy_user:
        host.noop("the deploy user is not proven by this run: image users stay as they are")
        return
    for user in data.base_image_users_to_lock:
        if user in ("root", data.base_deploy_user):
            continue
        access = host.get_fact(ImageUserAccess, user=user)
        if access is None:
            continue  # no such user
        # An expired account cannot log in to use a sudo rule that was left in place.
        if not access["keys"] and access["expired"]:
            host.noop(f"image user {user} is closed")
            continue
        server.shell(
            name=f"Close the image user {user} (the deploy user is proven)",
            commands=[lock_image_user_command(user)],
        )


def _ssh(ports: list[int]):
    supported = host.get_fact(OpensshAlgorithms)
    data = host.data

    def pick(preference, kind):
        available = supported.get(kind)
        return [a for a in preference if available is None or a in available] or preference

    proven = host.data.get("ssh_user") == data.base_deploy_user or host.get_fact(
        PathExists, path=DEPLOY_PROVEN_MARKER
    )
    content = render(
        "base/etc/ssh/sshd_config.d/00-galion-hardening.conf.j2",
        ports=ports,
        host_key_types=data.base_ssh_host_key_types,
        permit_root_login="no" if proven else "prohibit-password",
        max_auth_tries=data.base_ssh_max_auth_tries,
        login_grace_time=data.base_ssh_login_grace_time,
        max_startups=data.base_ssh_max_startups,
        client_alive_interval=data.base_ssh_client_alive_interval,
        client_alive_count_max=data.base_ssh_client_alive_count_max,
        max_sessions=data.base_ssh_max_sessions,
        kex=pick(data.base_ssh_kex_preference, "kex"),
        ciphers=pick(data.base_ssh_cipher_preference, "cipher"),
        macs=pick(data.base_ssh_mac_preference, "mac"),
    )
    dropin = config_file(
        name=f"SSH hardening drop-in, port {' and '.join(map(str, ports))} (validated by sshd -t)",
        dest=SSHD_DROPIN,
        content=content,
        validate=sshd_validate_command(),
    )
    # Ubuntu 24.04 starts sshd from ssh.socket; its generator reads the port at daemon-reload.
    socket_activated = host.get_fact(SystemdUnitEnabled, unit="ssh.socket") == "enabled"
    if socket_activated:
        server.shell(
            name="Re-read the SSH port for ssh.socket",
            commands=SSH_SOCKET_RELOAD,
            _if=dropin.did_change,
        )
    server.shell(
        name="Reload sshd if its config changed", commands=[SSHD_RELOAD], _if=dropin.did_change
    )


def _firewall(ssh_ports: list[int]):
    peers = topology.firewall_peers(inventory, host)
    prepend, rules = firewall_rules(host.data, host.groups, ssh_ports, peers)
    ufw_rules(
        name=f"UFW: default deny incoming, SSH on {' and '.join(map(str, ssh_ports))}, "
        "and what this host's groups need",
        prepend=prepend,
        rules=rules,
        defaults={"incoming": "deny", "outgoing": "allow", "routed": "deny"},
        must_allow_port=ssh_ports[0],
    )


def _prove_login(port: int):
    """Runs on the operator's machine during the run: a new login on `port`, as this run's
    user and key, to the same sshd (same host key) as the current connection."""
    transport = host.connector.client.get_transport()
    try:
        connection.prove_login(
            host.connector.make_paramiko_kwargs(), port, transport.get_remote_server_key()
        )
    except connection.LoginNotProven as exc:
        raise OperationError(
            f"SSH stays on its old port as well: {exc}. Open port {port} wherever else a "
            "firewall sits (the provider's panel), then run again with the same --data ssh_port."
        ) from exc


def _ssh_and_firewall():
    new = int(host.data.base_ssh_port)
    old = connection.moving_from(host.data)
    if old is None:
        _ssh([new])
        _firewall([new])
        return
    # Moving SSH (README "Moving SSH"): never a moment without a port that takes logins.
    # The new port is opened, sshd listens on both, a fresh login on the new one is
    # proven; only then sshd leaves the old port and its rule goes. A failed proof stops
    # the run here, with both ports open.
    _firewall([old, new])
    _ssh([old, new])
    python.call(name=f"Prove a login on the new SSH port {new}", function=_prove_login, port=new)
    _ssh([new])
    _firewall([new])


def _fail2ban():
    data = host.data
    jail = config_file(
        name="fail2ban: sshd jail on the journal, incremental bans",
        dest="/etc/fail2ban/jail.local",
        content=render(
            "base/etc/fail2ban/jail.local.j2",
            bantime=data.base_fail2ban_bantime,
            bantime_max=data.base_fail2ban_bantime_max,
            findtime=data.base_fail2ban_findtime,
            maxretry=data.base_fail2ban_maxretry,
            ignoreip=data.base_fail2ban_ignoreip,
            ssh_port=data.base_ssh_port,
        ),
        validate=commands.fail2ban_jail_test("jail.local"),
    )
    # Where these settings lived before (jail.d would override jail.local).
    old = files.file(
        name="fail2ban: no jail.d/galion.local (moved to jail.local)",
        path="/etc/fail2ban/jail.d/galion.local",
        present=False,
    )
    systemd.service(
        name="fail2ban running and enabled", service="fail2ban", running=True, enabled=True
    )
    systemd.service(
        name="Reload fail2ban if its jail changed",
        service="fail2ban",
        reloaded=True,
        _if=any_changed(jail, old),
    )


def _unattended_upgrades():
    data = host.data
    validate = "apt-config -c {staged} dump >/dev/null"
    config_file(
        name="Unattended upgrades: daily",
        dest="/etc/apt/apt.conf.d/20auto-upgrades",
        content=render("base/etc/apt/apt.conf.d/20auto-upgrades.j2"),
        validate=validate,
    )
    config_file(
        name="Unattended upgrades: reports and reboots",
        dest="/etc/apt/apt.conf.d/52galion-unattended-upgrades",
        content=render(
            "base/etc/apt/apt.conf.d/52galion-unattended-upgrades.j2",
            mail=data.operator_email if data.base_mail_relay else "",
            reboot=data.base_unattended_reboot,
            reboot_time=data.base_unattended_reboot_time,
        ),
        validate=validate,
    )


def _mail_relay():
    relay = host.data.base_mail_relay
    if not relay:
        return
    relay_host, relay_port = split_host_port(relay)
    config_file(
        name="SMTP relay for system mail (secret)",
        dest="/etc/msmtprc",
        mode="600",
        secret=True,
        validate="msmtp -C {staged} --pretend >/dev/null",
        content=render(
            "base/etc/msmtprc.j2",
            host=relay_host,
            port=relay_port,
            user=host.data.base_mail_relay_user,
            password=secrets.get("SMTP_RELAY_PASSWORD"),
            sender=host.data.operator_email,
        ),
    )


def _sysctl():
    if not host.data.base_sysctl_enabled:
        return
    values = sysctl_hardening(host.data, host.groups)
    config_file(
        name="sysctl hardening file",
        dest="/etc/sysctl.d/90-galion-hardening.conf",
        content=render("base/etc/sysctl.d/90-galion-hardening.conf.j2", values=values),
    )
    sysctl_values(name="sysctl hardening applied where this host allows", values=values)


def _journald():
    conf = config_file(
        name="journald: persistent, size-capped",
        dest="/etc/systemd/journald.conf.d/90-galion.conf",
        content=render(
            "base/etc/systemd/journald.conf.d/90-galion.conf.j2",
            max_use=host.data.base_journald_max_use,
        ),
    )
    files.directory(
        name="Persistent journal directory",
        path="/var/log/journal",
        mode="2755",
        group="systemd-journal",
    )
    systemd.service(
        name="Restart journald if its config changed",
        service="systemd-journald",
        restarted=True,
        _if=conf.did_change,
    )


def _time_sync():
    if host.get_fact(PathExists, path="/usr/sbin/chronyd"):
        return  # chrony already keeps time; two NTP clients would fight
    # In a container the clock is the machine's: timesyncd's unit skips itself there
    # (ConditionVirtualization=!container), so only ask it to run on a real host.
    systemd.service(
        name="Time sync (systemd-timesyncd)",
        service="systemd-timesyncd",
        enabled=True,
        running=None if in_container() else True,
    )


@deploy("Base hardening")
def base():
    _apt_lock_timeout()
    _packages()
    _deploy_user()
    _image_users()
    _ssh_and_firewall()
    _fail2ban()
    _unattended_upgrades()
    _mail_relay()
    _sysctl()
    _journald()
    _time_sync()
