"""Edge: nginx reverse proxy with Let's Encrypt (webroot), Mozilla intermediate TLS,
security headers everywhere, per-IP rate limits (429), caches, WebSockets.

One module per concern, run in the order of the entry point below: packages.py (nginx,
certbot, their directories), certificates.py (the placeholder, certbot, the retry
clock), settings.py (nginx.conf and the files every virtual host shares: logs,
compression, rate limits, caches, TLS, the status listener, port 443's sockets),
sites.py (one file per upstream and per virtual host), retire.py (the files of names
gone from the data), reload.py (nginx -t before a file goes live, one reload),
fail2ban.py (its nginx jails), metrics.py (request metrics, the nginx exporter).
checks.py holds preflight's checks of several keys at once.
"""

import re

from pyinfra import host
from pyinfra.api import deploy

from galion.role import Role
from galion.validators import (
    DURATION,
    IDENTIFIER,
    int_between,
    is_networks,
    is_port,
    is_readable_file_or_none,
    matches,
)

from . import certificates, checks, fail2ban, metrics, packages, reload, retire, settings, sites


@deploy("Edge: nginx and TLS")
def nginx_tls():
    vhosts = host.data.nginx_tls_vhosts
    brotli = packages.install()
    certificates.placeholders(vhosts)
    # conf.d in the order nginx reads it, each file checked by nginx -t before it is live.
    changed = [
        *settings.http(brotli),
        *sites.upstreams(),
        settings.status_listener(),
        *sites.virtual_hosts(vhosts),
        settings.https_sockets(),
    ]
    retired = retire.take_out(sites.wanted_files(vhosts))  # None: nothing to retire
    if retired:
        changed.append(retired)
    reload.nginx(changed)
    retire.delete(retired)
    certificates.issue(vhosts)
    fail2ban.jails()
    metrics.request_metrics(vhosts)
    metrics.exporter()


KNOBS = {
    # Public names, one virtual host each. kind: frontend (pages + static cache), api
    # (API rate limit + response cache), websocket (upgrade, long timeouts). csp: the
    # Content-Security-Policy of that host.
    "nginx_tls_vhosts": [
        {
            "name": "galion.app",
            "aliases": ["www.galion.app"],
            "upstream": "galion_frontend",
            "kind": "frontend",
            "csp": "default-src 'self'; img-src 'self' data: https:; connect-src 'self' "
            "https://api.galion.app wss://voice.galion.app wss://realtime.galion.app; "
            "frame-ancestors 'none'",
        },
        {
            "name": "api.galion.app",
            "aliases": [],
            "upstream": "galion_api",
            "kind": "api",
            "csp": "default-src 'none'; frame-ancestors 'none'",
        },
        {
            "name": "voice.galion.app",
            "aliases": [],
            "upstream": "galion_voice",
            "kind": "websocket",
            "csp": "default-src 'none'; frame-ancestors 'none'",
        },
        {
            "name": "realtime.galion.app",
            "aliases": [],
            "upstream": "galion_realtime",
            "kind": "websocket",
            "csp": "default-src 'none'; frame-ancestors 'none'",
        },
        {
            "name": "galion.studio",
            "aliases": ["www.galion.studio"],
            "upstream": "studio_frontend",
            "kind": "frontend",
            "csp": "default-src 'self'; img-src 'self' data: https:; connect-src 'self' "
            "https://api.galion.studio; frame-ancestors 'none'",
        },
        {
            "name": "api.galion.studio",
            "aliases": [],
            "upstream": "studio_api",
            "kind": "api",
            "csp": "default-src 'none'; frame-ancestors 'none'",
        },
    ],
    # Upstream name -> port the app service publishes on its app host (the plan's port map).
    "nginx_tls_upstream_ports": {
        "galion_frontend": 3001,
        "galion_api": 8001,
        "galion_voice": 8002,
        "studio_frontend": 3003,
        "studio_api": 8003,
        "galion_realtime": 8004,
    },
    # Path the apps serve their Prometheus metrics on: every public name answers 404
    # there; the monitoring reads it on nginx's loopback status listener instead.
    "nginx_tls_app_metrics_path": "/metrics",
    # How long the edge waits to connect to an app host before trying the next one (an
    # idempotent request): a host that went away costs this much, not nginx's 60 s.
    "nginx_tls_upstream_connect_timeout": "2s",
    # Upstreams whose apps serve those metrics (the FastAPI APIs); [] = none.
    "nginx_tls_metrics_upstreams": ["galion_api", "studio_api"],
    # ACME directory: Let's Encrypt production; staging is
    # https://acme-staging-v02.api.letsencrypt.org/directory (the sandbox uses its Pebble).
    "nginx_tls_acme_directory": "https://acme-v02.api.letsencrypt.org/directory",
    # CA bundle (local path) certbot trusts for the ACME server; None: the system's.
    "nginx_tls_acme_ca_bundle": None,
    # Largest request body (uploads); nginx answers 413 above it.
    "nginx_tls_client_max_body_size": "50m",
    # Seconds access.log lines may wait in each worker's 64k buffer before they are written
    # (one write per buffer instead of per request: 8 % less nginx CPU per request,
    # bench/edge); 0 writes each line at once. Readers of the log see lines this late.
    "nginx_tls_access_log_flush_seconds": 1,
    # Requests per minute per client IP to API hosts, and the burst allowed above it.
    "nginx_tls_rate_api_per_minute": 100,
    # Requests an API client may send at once above that rate before getting 429.
    "nginx_tls_rate_api_burst": 20,
    # Requests per minute per client IP to every other host, and its burst.
    "nginx_tls_rate_general_per_minute": 200,
    # Burst allowed above the general rate.
    "nginx_tls_rate_general_burst": 40,
    # Client addresses no rate or connection limit applies to (monitoring probes, the
    # operator's office, load tests); every other address is limited.
    "nginx_tls_rate_limit_exempt_cidrs": [],
    # Simultaneous connections per client IP.
    "nginx_tls_connections_per_ip": 50,
    # Proxy cache sizes: API responses and static assets (the plan's 1 GB + 500 MB).
    "nginx_tls_cache_api_size": "1g",
    # Disk for the static assets cache.
    "nginx_tls_cache_static_size": "500m",
    # How long cached API responses (that allow it) and static assets stay fresh.
    "nginx_tls_cache_api_valid": "1m",
    # Freshness of cached static assets.
    "nginx_tls_cache_static_valid": "7d",
    # Minutes between attempts to issue a certificate that failed (DNS not pointing here
    # yet): Let's Encrypt allows 5 failed validations per name and hour.
    "nginx_tls_acme_retry_minutes": 15,
    # First ban of the nginx jails (429 floods, vulnerability scans); repeats double it.
    "nginx_tls_fail2ban_bantime": "10m",
    # Longest nginx ban: web clients share addresses, so far below SSH's 7 days.
    "nginx_tls_fail2ban_bantime_max": "1d",
    # Cloudflare proxies in front: take the client IP from CF-Connecting-IP for these ranges.
    "nginx_tls_behind_cloudflare": False,
    # Cloudflare's published ranges (https://www.cloudflare.com/ips/), used when behind it.
    "nginx_tls_cloudflare_ranges": [
        "173.245.48.0/20",
        "103.21.244.0/22",
        "103.22.200.0/22",
        "103.31.4.0/22",
        "141.101.64.0/18",
        "108.162.192.0/18",
        "190.93.240.0/20",
        "188.114.96.0/20",
        "197.234.240.0/22",
        "198.41.128.0/17",
        "162.158.0.0/15",
        "104.16.0.0/13",
        "104.24.0.0/14",
        "172.64.0.0/13",
        "131.0.72.0/22",
        "2400:cb00::/32",
        "2606:4700::/32",
        "2803:f800::/32",
        "2405:b500::/32",
        "2405:8100::/32",
        "2a06:98c0::/29",
        "2c0f:f248::/32",
    ],
}

NGINX_SIZE = re.compile(r"^\d+[kmg]?$")


ROLE = Role(
    groups=("edge",),
    order=60,
    knob_prefixes=("nginx_tls_",),
    check_host=checks.check_vhosts,
    check_inventory=checks.check_inventory,
    checks=(
        (
            "nginx_tls_upstream_connect_timeout",
            matches(re.compile(r"^[1-9]\d*(ms|s)$")),
            "is not a duration in s or ms",
            'use "2s"',
        ),
        (
            "nginx_tls_app_metrics_path",
            matches(re.compile(r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")),
            "is not a URL path",
            'use "/metrics"',
        ),
        (
            "nginx_tls_upstream_ports",
            lambda v: (
                isinstance(v, dict)
                and all(IDENTIFIER.match(k) and is_port(p) for k, p in v.items())
            ),
            "is not {upstream_name: port}",
            "e.g. {'galion_api': 8001}",
        ),
        (
            "nginx_tls_acme_directory",
            lambda v: isinstance(v, str) and v.startswith("https://"),
            "is not an https:// ACME directory URL",
            "Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory",
        ),
        (
            "nginx_tls_acme_ca_bundle",
            is_readable_file_or_none,
            "is not a readable file",
            "None for the system's CAs",
        ),
        ("nginx_tls_client_max_body_size", matches(NGINX_SIZE), "is not an nginx size", "e.g. 50m"),
        ("nginx_tls_access_log_flush_seconds", int_between(0, 60), "is not 0-60 s", "use 1"),
        (
            "nginx_tls_rate_api_per_minute",
            int_between(1, 10**9),
            "is not a positive number",
            "use 100",
        ),
        (
            "nginx_tls_rate_general_per_minute",
            int_between(1, 10**9),
            "is not a positive number",
            "use 200",
        ),
        ("nginx_tls_rate_api_burst", int_between(0, 10**9), "is not a number", "use 20"),
        ("nginx_tls_rate_general_burst", int_between(0, 10**9), "is not a number", "use 40"),
        (
            "nginx_tls_connections_per_ip",
            int_between(1, 65535),
            "is not between 1 and 65535 (nginx's bound)",
            "use 50",
        ),
        ("nginx_tls_fail2ban_bantime", matches(DURATION), "is not a duration", "e.g. 10m"),
        (
            "nginx_tls_acme_retry_minutes",
            int_between(13, 1440),
            "is not minutes between 13 and 1440",
            "use 15 (Let's Encrypt: at most 5 failures per name and hour)",
        ),
        ("nginx_tls_fail2ban_bantime_max", matches(DURATION), "is not a duration", "e.g. 1d"),
        (
            "nginx_tls_rate_limit_exempt_cidrs",
            is_networks,
            "is not a list of addresses or CIDRs",
            'e.g. ["192.0.2.10/32"], or []',
        ),
    ),
)
