"""Base hardening for every host: deploy user, SSH, UFW, fail2ban, upgrades, sysctl, logs, time.

One concern per module of this package; `base()` below runs them in this order.
"""

from pyinfra.api import deploy

from galion.ops import restarts_after_crash
from galion.role import Knob, Role
from galion.validators import (
    DURATION,
    SIZE,
    UNIX_USER,
    int_between,
    is_host_port,
    is_networks,
    is_port,
    matches,
)

from . import checks, fail2ban, kernel, logs, mail, packages, ssh, time_sync, upgrades, users


@deploy("Base hardening")
def base():
    packages.apt_lock_timeout()
    packages.install()
    users.deploy_user()
    # Only after the deploy user: the image's users are closed once it is proven.
    users.image_users()
    # One step: moving SSH interleaves the two (ssh.py), never leaving no open port.
    ssh.sshd_and_firewall()
    fail2ban.sshd_jail()
    # Back by themselves after a crash: the way in, and what guards it.
    restarts_after_crash("sshd", "ssh.service")
    restarts_after_crash("fail2ban", "fail2ban.service")
    upgrades.unattended_upgrades()
    mail.relay()
    kernel.sysctl()
    logs.journald()
    time_sync.time_sync()


KNOBS = {
    # --- deploy user ---
    "base_deploy_user": Knob(
        "deploy",
        "Login user for every run after the first; passwordless sudo because pyinfra runs "
        "`sudo -n`.",
        check=lambda v: matches(UNIX_USER)(v) and v != "root",
        problem="is not a valid non-root Unix user name",
        fix="use lowercase letters, digits, - or _, e.g. deploy",
    ),
    "base_deploy_authorized_keys": Knob(
        [],
        "Public keys allowed to log in as the deploy user (exact set: others are removed); "
        "set them in the inventory (preflight refuses an empty list).",
    ),
    # Ubuntu's "ubuntu", Debian's "admin" and "debian", with passwordless sudo. Once the
    # deploy user is proven they are closed: keys emptied, sudo rules removed, account
    # expired.
    "base_image_users_to_lock": Knob(
        ["ubuntu", "debian", "admin"],
        "Users a cloud image logs in as first, closed once the deploy user is proven; [] "
        "keeps them as they are.",
        check=lambda v: isinstance(v, list) and all(matches(UNIX_USER)(u) for u in v),
        problem="is not a list of user names",
        fix='e.g. ["ubuntu"], or [] to leave image users alone',
    ),
    # --- SSH ---
    # To move it, change it and run once with --data ssh_port=<the old port>.
    "base_ssh_port": Knob(
        22,
        "Port sshd listens on (UFW opens it everywhere); pyinfra connects on it too. Moving "
        'it: docs/OPERATIONS.md, "Moving SSH".',
        check=is_port,
        problem="is not a TCP port (1-65535)",
        fix="use {default} unless you moved SSH",
    ),
    # Clients that know only the host's ECDSA key ask once to accept the ED25519 one
    # (docs/OPERATIONS.md, "Host keys").
    "base_ssh_host_key_types": Knob(
        ["ed25519", "rsa"],
        "Host keys sshd offers (ssh-audit fails ECDSA: NIST P-256).",
        check=lambda v: isinstance(v, list) and v and set(v) <= {"ed25519", "rsa", "ecdsa"},
        problem="is not a non-empty list of ed25519, rsa, ecdsa",
    ),
    "base_ssh_client_alive_count_max": Knob(
        2,
        "Unanswered keepalives (each after base_ssh_client_alive_interval) before sshd drops "
        "a session.",
        check=int_between(1, 10),
    ),
    # pyinfra's SFTP channel stays open and closed command channels linger: 2 (Lynis'
    # wish) failed converges; 10 is OpenSSH's default.
    "base_ssh_max_sessions": Knob(
        10, "Sessions (channels) open at once per SSH connection.", check=int_between(4, 64)
    ),
    "base_ssh_max_auth_tries": Knob(
        3,
        "Failed authentications per connection before sshd drops it (CIS 5.2.7 says <= 4).",
        check=int_between(1, 10),
    ),
    "base_ssh_login_grace_time": Knob(
        30, "Seconds an unauthenticated connection may stay (CIS 5.2.16 says <= 60)."
    ),
    "base_ssh_client_alive_interval": Knob(
        300,
        "Seconds between keepalives: a dead client goes after this times "
        "base_ssh_client_alive_count_max.",
    ),
    "base_ssh_max_startups": Knob(
        "10:30:60",
        "Concurrent unauthenticated connections: start:rate:full (OpenSSH default is 10:30:100).",
    ),
    # Each list is cut to what the host's OpenSSH supports (`ssh -Q`), so one list serves
    # Debian 12, Debian 13 and Ubuntu 24.04.
    "base_ssh_kex_preference": Knob(
        [
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
        "Key exchange algorithms sshd offers, strongest first.",
    ),
    "base_ssh_cipher_preference": Knob(
        [
            "chacha20-poly1305@openssh.com",
            "aes256-gcm@openssh.com",
            "aes128-gcm@openssh.com",
            "aes256-ctr",
            "aes192-ctr",
            "aes128-ctr",
        ],
        "Ciphers: AEAD first; CTR modes stay for older clients (paramiko); no CBC.",
    ),
    "base_ssh_mac_preference": Knob(
        [
            "hmac-sha2-512-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "umac-128-etm@openssh.com",
            "hmac-sha2-512",
            "hmac-sha2-256",
        ],
        "MACs: encrypt-then-MAC first; no SHA-1, no 64-bit tags.",
    ),
    # --- firewall ---
    "base_ssh_trusted_cidrs": Knob(
        [],
        "Sources exempt from the SSH rate limit (an office or VPN address); empty in production.",
        check=is_networks,
        problem="is not a list of CIDRs",
        fix="write addresses like 203.0.113.7/32, or leave the list empty",
    ),
    "base_firewall_ports_by_group": Knob(
        {"edge": ["80/tcp", "443/tcp"]},
        "Ports opened per inventory group, beyond SSH which is open (rate-limited) everywhere.",
        check=checks.firewall_ports_ok,
        problem="is not {role group: ['PORT/tcp', ...]}",
        fix="e.g. {'edge': ['80/tcp', '443/tcp']}",
    ),
    # --- fail2ban ---
    "base_fail2ban_bantime": Knob(
        "1h",
        "First ban length; each repeat offence doubles it (bantime.increment) up to the maximum.",
        check=matches(DURATION),
        problem="is not a duration",
        fix="use a number with s, m, h, d or w, e.g. 1h",
    ),
    "base_fail2ban_bantime_max": Knob(
        "7d",
        "Longest ban: repeat offences double the ban up to this.",
        check=matches(DURATION),
        problem="is not a duration",
        fix="use a number with s, m, h, d or w, e.g. 7d",
    ),
    "base_fail2ban_findtime": Knob(
        "10m",
        "Window in which failures are counted.",
        check=matches(DURATION),
        problem="is not a duration",
        fix="use a number with s, m, h, d or w, e.g. 10m",
    ),
    "base_fail2ban_maxretry": Knob(
        5, "Failures within that window that ban the source.", check=int_between(1, 100)
    ),
    "base_fail2ban_ignoreip": Knob(
        ["127.0.0.1/8", "::1"],
        "Never banned (loopback; add the monitoring or office address if it probes SSH).",
        check=is_networks,
        fix="write entries like 127.0.0.1/8",
    ),
    # --- unattended upgrades ---
    "base_unattended_reboot": Knob(
        False,
        "Reboot by itself when an upgrade needs it (kernel, libc); off: the on-call reboots.",
    ),
    "base_unattended_reboot_time": Knob(
        "04:00",
        "When such a reboot may happen (host's local time), if enabled.",
        check=matches(checks.TIME_OF_DAY),
        problem="is not HH:MM",
        fix="e.g. 04:00",
    ),
    # --- outgoing mail ---
    "base_mail_relay": Knob(
        "",
        "SMTP relay for unattended-upgrades reports (host:port, STARTTLS; its password is the "
        'secret SMTP_RELAY_PASSWORD); "" = no mail relay.',
        check=lambda v: v == "" or is_host_port(v),
        problem="is not host:port",
        fix='e.g. smtp.eu.mailgun.org:587, or "" for no relay',
    ),
    "base_mail_relay_user": Knob("", "Login user at the relay."),
    # --- kernel and logs ---
    # Docker publishes ports through forwarding.
    "base_ip_forwarding_groups": Knob(
        ["app"],
        "Hosts in these groups run Docker: net.ipv4.ip_forward stays on there, off "
        "everywhere else.",
    ),
    "base_sysctl_enabled": Knob(
        True,
        "Apply sysctl hardening (file always written; live values where the host allows).",
    ),
    # The box's disk keeps 2-5 GB for logs of every kind (the journal, nginx, PostgreSQL).
    "base_journald_max_use": Knob(
        "1G",
        "Cap on the persistent journal (journald's SystemMaxUse).",
        check=matches(SIZE),
        problem="is not a size",
        fix="use a number with K, M, G or T, e.g. 1G",
    ),
    "base_apt_lock_timeout": Knob(
        600,
        "Seconds apt waits for another apt/dpkg (a fresh box's apt-daily timer) before failing.",
    ),
}


ROLE = Role(
    groups=(),
    order=10,
    knob_prefixes=("base_",),
    required_secrets=mail.required_secrets,
    check_host=checks.check_host,
)
