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

# --- PostgreSQL (postgres role: hosts in db) ------------------------------------------
# Major version; None takes the distro's (Debian 12: 15, Debian 13: 17, Ubuntu 24.04: 16).
postgres_version = None
# Memory PostgreSQL may plan with, in MB; None: half the RAM on a host that also runs
# the apps (16 GB box: 8 GB, so shared_buffers 2 GB as planned), 3/4 on a DB-only host.
postgres_memory_budget_mb = None
# Client connections PostgreSQL accepts (PgBouncer multiplexes the apps' onto few).
postgres_max_connections = 200
# TCP port of PostgreSQL itself; the apps use PgBouncer's.
postgres_port = 5432
# SSD: random reads cost about what sequential ones do.
postgres_random_page_cost = 1.1
# SSD: concurrent I/O requests the planner may expect for bitmap heap scans.
postgres_effective_io_concurrency = 200
# WAL senders and replication slots: room for replicas (step 7) and pgBackRest.
postgres_max_wal_senders = 10
# Replication slots allowed (one per replica and per WAL-streaming backup).
postgres_max_replication_slots = 10
# Checkpoint spacing: fewer, smoother checkpoints on a write-light SaaS.
postgres_checkpoint_timeout = "15min"
# WAL kept between checkpoints before one is forced.
postgres_max_wal_size = "4GB"
# WAL recycled rather than removed below this.
postgres_min_wal_size = "1GB"
# Log statements slower than this (ms): the plan's "slow query > 1 s".
postgres_log_min_duration_ms = 1000
# The apps' databases, each owned by its own login role; the password of each role is
# the secret named in password_secret.
postgres_databases = [
    {"name": "galion", "owner": "galion", "password_secret": "POSTGRES_GALION_PASSWORD"},
    {"name": "galion_studio", "owner": "galion_studio",
     "password_secret": "POSTGRES_GALION_STUDIO_PASSWORD"},
]
# Read-only role for the metrics exporter (member of pg_monitor).
postgres_monitoring_role = "galion_monitoring"
# Role replicas and backups stream WAL as (REPLICATION, no superuser).
postgres_replication_role = "replicator"
# vm.swappiness on DB hosts: swap only under real pressure (0 would invite the OOM killer
# on the shared box, where Docker's containers need the same memory).
postgres_vm_swappiness = 10
# vm.overcommit_memory on DB hosts: 1, as Redis needs for fork-based snapshots; strict
# accounting (2) would make Docker and Node fail allocations on the shared box.
postgres_vm_overcommit_memory = 1

# --- PgBouncer (postgres role) --------------------------------------------------------
# Port the apps connect to (their DATABASE_URL points here, not at PostgreSQL).
pgbouncer_port = 6432
# Client connections PgBouncer accepts in all.
pgbouncer_max_client_conn = 1000
# Server connections per database and user (transaction pooling).
pgbouncer_default_pool_size = 25
# Extra server connections a busy pool may borrow for a moment.
pgbouncer_reserve_pool_size = 5
# Role PgBouncer logs in as to look up client passwords (auth_query).
pgbouncer_auth_user = "pgbouncer_auth"
# Role the exporter reads SHOW STATS with (PgBouncer admin console, stats only).
pgbouncer_stats_user = "pgbouncer_stats"

# --- Redis (redis role: hosts in db) --------------------------------------------------
# TCP port.
redis_port = 6379
# Memory for data, in MB: the plan's 2 GB on the 16 GB box.
redis_maxmemory_mb = 2048
# What goes when full: only keys with a TTL (caches, sessions); keys without one are
# never dropped silently, writes fail instead.
redis_maxmemory_policy = "volatile-lru"
# ACL user of the apps (all keys, no dangerous commands).
redis_app_user = "galion"
# ACL user for operators and the exporter (all commands).
redis_admin_user = "admin"

# --- the apps (app_env role: hosts in app; the app tier, step 5, adds to these) --------
# Each app stack: its database (one of postgres_databases) and its Redis database number
# (the plan: 0 app sessions, 1 voice cache, 2 studio sessions, 3 realtime, 4 rate limits).
app_stacks = [
    {"name": "galion", "database": "galion", "redis_db": 0},
    {"name": "galion_studio", "database": "galion_studio", "redis_db": 2},
]
# Directory of the apps' environment files (secrets: root only), one <app>.env each.
app_env_dir = "/etc/galion/env"

# --- backups (backups role: hosts in backups, which run PostgreSQL too) ---------------
# Seconds after which a partly filled WAL segment is archived anyway: bounds the data
# lost when the disk dies (RPO) to about this much.
backups_archive_timeout = 60
# Days backups are kept, in both repositories and for the logical dumps (time-based).
backups_retention_days = 30
# Local repository (repo1): fast restores; lost with the disk, hence repo2.
backups_local_repo = "/var/lib/pgbackrest"
# WAL waiting to be pushed beyond this is dropped (so the disk does not fill and stop
# PostgreSQL); the drop is counted in galion_wal_archive_dropped_total and alerts.
backups_archive_queue_max = "4GiB"
# Off-site repository (repo2) on S3-compatible storage (Backblaze B2, Cloudflare R2):
# endpoint host, port, region, bucket and path inside it. Keys: BACKUPS_S3_* secrets.
backups_s3_endpoint = "s3.eu-central-003.backblazeb2.com"
# TCP port of the S3 endpoint (HTTPS).
backups_s3_port = 443
# Region name the provider expects (B2: as in the endpoint; R2: "auto").
backups_s3_region = "eu-central-003"
# Bucket (private, created in the provider's console).
backups_s3_bucket = "galion-backups"
# Folder inside the bucket, so one bucket can serve several environments.
backups_s3_path = "/titanaxe"
# CA file (local path) the hosts trust for the endpoint; None: the system's CAs.
backups_s3_ca_file = None
# systemd OnCalendar of the weekly full backup (both repositories).
backups_full_schedule = "Sun *-*-* 01:00"
# systemd OnCalendar of the daily differential backup (the plan's 02:00).
backups_diff_schedule = "*-*-* 02:00"
# systemd OnCalendar of the daily logical dump of each database (pg_dump -Fc).
backups_dump_schedule = "*-*-* 02:30"
# systemd OnCalendar of the weekly restore drill into a scratch directory.
backups_drill_schedule = "Sat *-*-* 04:00"
# Port of the scratch PostgreSQL the drill starts (loopback-only, never the live one).
backups_drill_port = 5499
# Where the logical dumps are kept locally (one folder per database).
backups_dump_dir = "/var/backups/galion"
# node_exporter's textfile directory: backup and drill metrics for monitoring (step 6).
backups_textfile_dir = "/var/lib/prometheus/node-exporter"

# --- edge: nginx + Let's Encrypt (nginx_tls role: hosts in edge) ----------------------
# Public names, one virtual host each. kind: frontend (pages + static cache), api
# (API rate limit + response cache), websocket (upgrade, long timeouts). csp: the
# Content-Security-Policy of that host.
nginx_vhosts = [
    {"name": "galion.app", "aliases": ["www.galion.app"], "upstream": "galion_frontend",
     "kind": "frontend", "csp": "default-src 'self'; img-src 'self' data: https:; connect-src 'self' https://api.galion.app wss://voice.galion.app wss://realtime.galion.app; frame-ancestors 'none'"},
    {"name": "api.galion.app", "aliases": [], "upstream": "galion_api", "kind": "api",
     "csp": "default-src 'none'; frame-ancestors 'none'"},
    {"name": "voice.galion.app", "aliases": [], "upstream": "galion_voice", "kind": "websocket",
     "csp": "default-src 'none'; frame-ancestors 'none'"},
    {"name": "realtime.galion.app", "aliases": [], "upstream": "galion_realtime",
     "kind": "websocket", "csp": "default-src 'none'; frame-ancestors 'none'"},
    {"name": "galion.studio", "aliases": ["www.galion.studio"], "upstream": "studio_frontend",
     "kind": "frontend", "csp": "default-src 'self'; img-src 'self' data: https:; connect-src 'self' https://api.galion.studio; frame-ancestors 'none'"},
    {"name": "api.galion.studio", "aliases": [], "upstream": "studio_api", "kind": "api",
     "csp": "default-src 'none'; frame-ancestors 'none'"},
]
# Upstream name -> port the app service publishes on its app host (the plan's port map).
nginx_upstream_ports = {
    "galion_frontend": 3001, "galion_api": 8001, "galion_voice": 8002,
    "studio_frontend": 3003, "studio_api": 8003, "galion_realtime": 8004,
}
# ACME directory: Let's Encrypt production; staging is
# https://acme-staging-v02.api.letsencrypt.org/directory (the sandbox uses its Pebble).
nginx_acme_directory = "https://acme-v02.api.letsencrypt.org/directory"
# CA bundle (local path) certbot trusts for the ACME server; None: the system's.
nginx_acme_ca_bundle = None
# Largest request body (uploads); nginx answers 413 above it.
nginx_client_max_body_size = "50m"
# Requests per minute per client IP to API hosts, and the burst allowed above it.
nginx_rate_api_per_minute = 100
# Requests an API client may send at once above that rate before getting 429.
nginx_rate_api_burst = 20
# Requests per minute per client IP to every other host, and its burst.
nginx_rate_general_per_minute = 200
# Burst allowed above the general rate.
nginx_rate_general_burst = 40
# Simultaneous connections per client IP.
nginx_connections_per_ip = 50
# Proxy cache sizes: API responses and static assets (the plan's 1 GB + 500 MB).
nginx_cache_api_size = "1g"
# Disk for the static assets cache.
nginx_cache_static_size = "500m"
# How long cached API responses (that allow it) and static assets stay fresh.
nginx_cache_api_valid = "1m"
# Freshness of cached static assets.
nginx_cache_static_valid = "7d"
# Cloudflare proxies in front: take the client IP from CF-Connecting-IP for these ranges.
nginx_behind_cloudflare = False
# Cloudflare's published ranges (https://www.cloudflare.com/ips/), used when behind it.
nginx_cloudflare_ranges = [
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22",
    "141.101.64.0/18", "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20",
    "197.234.240.0/22", "198.41.128.0/17", "162.158.0.0/15", "104.16.0.0/13",
    "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22", "2400:cb00::/32", "2606:4700::/32",
    "2803:f800::/32", "2405:b500::/32", "2405:8100::/32", "2a06:98c0::/29", "2c0f:f248::/32",
]
