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

from galion.role import Knob, Role
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


NGINX_SIZE = re.compile(r"^\d+[kmg]?$")

KNOBS = {
    # kind: frontend (pages + static cache), api (API rate limit + response cache),
    # websocket (upgrade, long timeouts). Checked with nginx_tls_upstream_ports (checks.py).
    "nginx_tls_vhosts": Knob(
        [
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
        "Public names, one virtual host each: name, aliases, upstream, kind (frontend, api, "
        "websocket), csp (its Content-Security-Policy).",
    ),
    "nginx_tls_upstream_ports": Knob(
        {
            "galion_frontend": 3001,
            "galion_api": 8001,
            "galion_voice": 8002,
            "studio_frontend": 3003,
            "studio_api": 8003,
            "galion_realtime": 8004,
        },
        "Upstream name -> port the app service publishes on its app host.",
        check=lambda v: (
            isinstance(v, dict) and all(IDENTIFIER.match(k) and is_port(p) for k, p in v.items())
        ),
        problem="is not {upstream_name: port}",
        fix="e.g. {'galion_api': 8001}",
    ),
    # Every public name answers 404 there; the monitoring reads it on nginx's loopback
    # status listener instead.
    "nginx_tls_app_metrics_path": Knob(
        "/metrics",
        "Path the apps serve their Prometheus metrics on.",
        check=matches(re.compile(r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")),
        problem="is not a URL path",
    ),
    # An idempotent request goes to the next one: a host that went away costs this much,
    # not nginx's 60 s.
    "nginx_tls_upstream_connect_timeout": Knob(
        "2s",
        "How long the edge waits to connect to an app host before trying the next one.",
        check=matches(re.compile(r"^[1-9]\d*(ms|s)$")),
        problem="is not a duration in s or ms",
    ),
    # Checked with nginx_tls_upstream_ports (checks.py).
    "nginx_tls_metrics_upstreams": Knob(
        ["galion_api", "studio_api"],
        "Upstreams whose apps serve those metrics (the FastAPI APIs); [] = none.",
    ),
    # The sandbox uses its Pebble.
    "nginx_tls_acme_directory": Knob(
        "https://acme-v02.api.letsencrypt.org/directory",
        "ACME directory certbot asks for certificates: Let's Encrypt production; staging is "
        "https://acme-staging-v02.api.letsencrypt.org/directory.",
        check=lambda v: isinstance(v, str) and v.startswith("https://"),
        problem="is not an https:// ACME directory URL",
        fix="Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory",
    ),
    "nginx_tls_acme_ca_bundle": Knob(
        None,
        "CA bundle (local path) certbot trusts for the ACME server; None: the system's.",
        check=is_readable_file_or_none,
        fix="None for the system's CAs",
    ),
    "nginx_tls_client_max_body_size": Knob(
        "50m",
        "Largest request body (uploads); nginx answers 413 above it.",
        check=matches(NGINX_SIZE),
        problem="is not an nginx size",
        fix="e.g. 50m",
    ),
    # One write per buffer instead of per request: 8 % less nginx CPU per request
    # (bench/edge). Readers of the log see lines this late.
    "nginx_tls_access_log_flush_seconds": Knob(
        1,
        "Seconds access.log lines may wait in each worker's 64k buffer before they are "
        "written; 0 writes each line at once.",
        check=int_between(0, 60),
        problem="is not 0-60 s",
    ),
    "nginx_tls_rate_api_per_minute": Knob(
        100,
        "Requests per minute per client IP to API hosts.",
        check=int_between(1, 10**9),
        problem="is not a positive number",
    ),
    "nginx_tls_rate_api_burst": Knob(
        20,
        "Requests an API client may send at once above that rate before getting 429.",
        check=int_between(0, 10**9),
        problem="is not a number",
    ),
    "nginx_tls_rate_general_per_minute": Knob(
        200,
        "Requests per minute per client IP to every other host.",
        check=int_between(1, 10**9),
        problem="is not a positive number",
    ),
    "nginx_tls_rate_general_burst": Knob(
        40,
        "Burst allowed above the general rate.",
        check=int_between(0, 10**9),
        problem="is not a number",
    ),
    "nginx_tls_rate_limit_exempt_cidrs": Knob(
        [],
        "Client addresses no rate or connection limit applies to (monitoring probes, the "
        "operator's office, load tests); every other address is limited.",
        check=is_networks,
        fix='e.g. ["192.0.2.10/32"], or []',
    ),
    "nginx_tls_connections_per_ip": Knob(
        50,
        "Simultaneous connections per client IP.",
        check=int_between(1, 65535),
        problem="is not between 1 and 65535 (nginx's bound)",
    ),
    "nginx_tls_cache_api_size": Knob("1g", "Disk for the cache of API responses."),
    "nginx_tls_cache_static_size": Knob("500m", "Disk for the cache of static assets."),
    "nginx_tls_cache_api_valid": Knob(
        "1m", "How long cached API responses (that allow it) stay fresh."
    ),
    "nginx_tls_cache_static_valid": Knob("7d", "Freshness of cached static assets."),
    # DNS not pointing here yet: Let's Encrypt allows 5 failed validations per name and
    # hour.
    "nginx_tls_acme_retry_minutes": Knob(
        15,
        "Minutes between attempts to issue a certificate that failed.",
        check=int_between(13, 1440),
        problem="is not minutes between 13 and 1440",
        fix="use {default} (Let's Encrypt: at most 5 failures per name and hour)",
    ),
    "nginx_tls_fail2ban_bantime": Knob(
        "10m",
        "First ban of the nginx jails (429 floods, vulnerability scans); repeats double it.",
        check=matches(DURATION),
        problem="is not a duration",
        fix="e.g. 10m",
    ),
    # Web clients share addresses, so far below SSH's (base_fail2ban_bantime_max).
    "nginx_tls_fail2ban_bantime_max": Knob(
        "1d",
        "Longest nginx ban.",
        check=matches(DURATION),
        problem="is not a duration",
        fix="e.g. 1d",
    ),
    "nginx_tls_behind_cloudflare": Knob(
        False,
        "Cloudflare proxies in front: take the client IP from CF-Connecting-IP for its ranges.",
    ),
    "nginx_tls_cloudflare_ranges": Knob(
        [
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
        "Cloudflare's published ranges (https://www.cloudflare.com/ips/), used when behind it.",
    ),
}


ROLE = Role(
    groups=("edge",),
    order=60,
    knob_prefixes=("nginx_tls_",),
    check_host=checks.check_vhosts,
    check_inventory=checks.check_inventory,
)
