"""Base hardening for every host: deploy user, SSH, UFW, fail2ban, upgrades, sysctl, logs, time.

One concern per module of this package; `base()` below runs them in this order.
"""

from pyinfra.api import deploy

from galion.role import Role
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
    upgrades.unattended_upgrades()
    mail.relay()
    kernel.sysctl()
    logs.journald()
    time_sync.time_sync()


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


ROLE = Role(
    groups=(),
    order=10,
    knob_prefixes=("base_",),
    required_secrets=mail.required_secrets,
    check_host=checks.check_host,
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
            checks.firewall_ports_ok,
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
        ("base_unattended_reboot_time", matches(checks.TIME_OF_DAY), "is not HH:MM", "e.g. 04:00"),
        (
            "base_mail_relay",
            lambda v: v == "" or is_host_port(v),
            "is not host:port",
            'e.g. smtp.eu.mailgun.org:587, or "" for no relay',
        ),
    ),
)
