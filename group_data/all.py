# Knobs shared by every host. One key lives in exactly one group_data file
# (tests/unit/test_group_data.py checks), so group precedence never decides a value.
# Override per host in the inventory; secrets never go here (see .env.example).

# --- operator -------------------------------------------------------------------------
# Receives Let's Encrypt expiry notices, unattended-upgrades reports and alerts.
operator_email = "ops@galion.app"

# --- deploy user (base role) ----------------------------------------------------------
# Login user for every run after the first; passwordless sudo because pyinfra runs `sudo -n`.
base_deploy_user = "deploy"
# Public keys allowed to log in as the deploy user (exact set: others are removed).
# Set these in the inventory; preflight refuses an empty list.
base_deploy_authorized_keys = []

# --- SSH (base role) ------------------------------------------------------------------
# Port sshd listens on (UFW opens it everywhere).
base_ssh_port = 22
# Failed authentications per connection before sshd drops it (CIS 5.2.7 says <= 4).
base_ssh_max_auth_tries = 3
# Seconds an unauthenticated connection may stay (CIS 5.2.16 says <= 60).
base_ssh_login_grace_time = 30
# Seconds between keepalives; with ClientAliveCountMax 3 a dead client goes after 15 min.
base_ssh_client_alive_interval = 300
# Concurrent unauthenticated connections: start:rate:full (OpenSSH default is 10:30:100).
base_ssh_max_startups = "10:30:60"
# Preferred algorithms, strongest first; each list is cut to what the host's OpenSSH
# supports (`ssh -Q`), so one list serves Debian 12, Debian 13 and Ubuntu 24.04.
base_ssh_kex_preference = [
    "mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256", "curve25519-sha256@libssh.org",
    "diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
    "diffie-hellman-group-exchange-sha256",
]
# Ciphers: AEAD first; CTR modes stay for older clients (paramiko); no CBC.
base_ssh_cipher_preference = [
    "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
    "aes256-ctr", "aes192-ctr", "aes128-ctr",
]
# MACs: encrypt-then-MAC first; no SHA-1, no 64-bit tags.
base_ssh_mac_preference = [
    "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com",
    "hmac-sha2-512", "hmac-sha2-256",
]

# --- firewall (base role) -------------------------------------------------------------
# Sources exempt from the SSH rate limit (an office or VPN address); empty in production.
base_ssh_trusted_cidrs = []
# Ports opened per inventory group, beyond SSH which is open (rate-limited) everywhere.
base_firewall_ports_by_group = {
    "edge": ["80/tcp", "443/tcp"],
}

# --- fail2ban (base role) -------------------------------------------------------------
# First ban length; each repeat offence doubles it (bantime.increment) up to the maximum.
base_fail2ban_bantime = "1h"
# Longest ban: the plan's "auto-ban for 1-7 days".
base_fail2ban_bantime_max = "7d"
# Window in which failures are counted.
base_fail2ban_findtime = "10m"
# Failures within that window that ban the source.
base_fail2ban_maxretry = 5
# Never banned (loopback; add the monitoring or office address if it probes SSH).
base_fail2ban_ignoreip = ["127.0.0.1/8", "::1"]

# --- unattended upgrades (base role) --------------------------------------------------
# Reboot by itself when an upgrade needs it (kernel, libc); off: the on-call reboots.
base_unattended_reboot = False
# When such a reboot may happen (host's local time), if enabled.
base_unattended_reboot_time = "04:00"

# --- outgoing mail (base role) --------------------------------------------------------
# SMTP relay for unattended-upgrades reports (host:port, STARTTLS); empty = no mail relay.
# Its password is the secret SMTP_RELAY_PASSWORD.
base_mail_relay = ""
# Login user at the relay.
base_mail_relay_user = ""

# --- kernel and logs (base role) ------------------------------------------------------
# Hosts in these groups run Docker, which publishes ports through forwarding: keep
# net.ipv4.ip_forward on there, off everywhere else.
base_ip_forwarding_groups = ["app"]
# Apply sysctl hardening (file always written; live values where the host allows).
base_sysctl_enabled = True
# Cap on the persistent journal (journald's SystemMaxUse); the plan budgets 2-5 GB for logs.
base_journald_max_use = "1G"
# Seconds apt waits for another apt/dpkg (a fresh box's apt-daily timer) before failing.
base_apt_lock_timeout = 600
