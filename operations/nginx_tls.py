"""Edge: nginx reverse proxy with Let's Encrypt (webroot), Mozilla intermediate TLS,
security headers everywhere, per-IP rate limits (429), caches, WebSockets."""

import re
import shlex
from pathlib import Path

from pyinfra import host, inventory, logger
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import commands, exporters, topology
from galion.facts import (
    AptCandidate,
    CertbotLineage,
    FilesMarked,
    PathExists,
    SecondsSinceFailure,
)
from galion.ops import config_file, nginx_log_files, render
from galion.preflight import (
    DURATION,
    IDENTIFIER,
    Problem,
    int_between,
    is_address_or_name,
    is_networks,
    is_port,
    is_readable_file_or_none,
    matches,
    needs_group,
    run_checks,
)
from galion.role import Role

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

VHOST_KINDS = ("frontend", "api", "websocket")
NGINX_SIZE = re.compile(r"^\d+[kmg]?$")


def _vhosts_ok(data):
    ports = data.get("nginx_tls_upstream_ports") or {}
    return lambda v: (
        isinstance(v, list)
        and bool(v)
        and all(
            isinstance(x, dict)
            and is_address_or_name(x.get("name"))
            and all(is_address_or_name(a) for a in x.get("aliases", []))
            and x.get("kind") in VHOST_KINDS
            and x.get("upstream") in ports
            and isinstance(x.get("csp"), str)
            and '"' not in x.get("csp")
            for x in v
        )
    )


def _check_vhosts(name: str, data, groups) -> list[Problem]:
    """The vhosts and the metrics upstreams against the upstream map (checks of two
    keys together)."""
    ports = data.get("nginx_tls_upstream_ports") or {}
    return run_checks(
        name,
        data,
        [
            (
                "nginx_tls_vhosts",
                _vhosts_ok(data),
                "is not a list of {name, aliases, upstream, kind, csp} with known upstreams",
                f"kind is one of {', '.join(VHOST_KINDS)}; "
                "upstream a key of nginx_tls_upstream_ports",
            ),
            (
                "nginx_tls_metrics_upstreams",
                lambda v: isinstance(v, list) and all(u in ports for u in v),
                "is not a list of upstreams of nginx_tls_upstream_ports",
                'e.g. ["galion_api"], or [] if no app serves metrics',
            ),
        ],
    )


def _check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    return needs_group(
        hosts, "edge", "app", "has nothing to proxy to", "put at least one host in group app"
    )


ROLE = Role(
    groups=("edge",),
    order=60,
    knob_prefixes=("nginx_tls_",),
    check_host=_check_vhosts,
    check_inventory=_check_inventory,
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

# Distros whose nginx predates `http2 on;` (1.25.1): Debian 12 (1.22), Ubuntu 24.04 (1.24).
LEGACY_HTTP2 = {("debian", "12"), ("ubuntu", "24.04")}
ACME_CA = "/etc/galion/acme-ca.pem"
WEBROOT = "/var/www/letsencrypt"
PLACEHOLDER = "/etc/nginx/tls/placeholder"


def placeholder_certificate_command() -> str:
    """A self-signed certificate nginx can start with before the first one is issued."""
    return (
        f"install -d -m 0700 {PLACEHOLDER} && openssl req -x509 -newkey rsa:2048 -nodes "
        f"-days 3650 -subj /CN=placeholder.invalid -keyout {PLACEHOLDER}/privkey.pem "
        f"-out {PLACEHOLDER}/fullchain.pem 2>/dev/null"
    )


def serve_certificate_commands(vhost: str, source_dir: str) -> list[str]:
    """Point the vhost's certificate links at a lineage (placeholder or issued)."""
    tls = f"/etc/nginx/tls/{vhost}"
    return [
        f"ln -sfn {source_dir}/fullchain.pem {tls}/fullchain.pem",
        f"ln -sfn {source_dir}/privkey.pem {tls}/privkey.pem",
    ]


def certbot_command(
    lineage: str, names: list[str], directory: str, email: str, env: str = ""
) -> str:
    """certbot by webroot; `env` sets REQUESTS_CA_BUNDLE for a private ACME CA."""
    domains = " ".join(f"-d {shlex.quote(n)}" for n in names)
    return (
        f"{env}certbot certonly --webroot -w {WEBROOT} --cert-name {lineage} {domains} "
        f"--server {shlex.quote(directory)} --email {shlex.quote(email)} "
        "--agree-tos --non-interactive --keep-until-expiring --expand --no-eff-email -q"
    )


# When issuing a certificate last failed, per lineage (epoch seconds).
ACME_FAILED_DIR = "/var/lib/galion/acme-failed"


def issue_certificate_command(lineage: str, names: list[str], data, env: str = "") -> str:
    """Issue, then serve the certificate; on failure record when, keep the placeholder and
    fail (the operation ignores the error: the run goes on and ends with a warning)."""
    live = f"/etc/letsencrypt/live/{lineage}"
    issue = certbot_command(
        lineage, names, data.get("nginx_tls_acme_directory"), data.get("operator_email"), env
    )
    serve = " && ".join([*serve_certificate_commands(lineage, live), commands.NGINX_RELOAD])
    return (
        f"if {issue}; then rm -f {ACME_FAILED_DIR}/{lineage} && {serve}; else "
        f"install -d -m 0755 {ACME_FAILED_DIR} && date +%s > {ACME_FAILED_DIR}/{lineage}.new "
        f"&& mv {ACME_FAILED_DIR}/{lineage}.new {ACME_FAILED_DIR}/{lineage}; "
        f"echo 'certificate for {lineage} not issued (does its DNS point at this host?): "
        "the placeholder stays; the next converge retries' >&2; exit 1; fi"
    )


# One file per upstream with its `server` lines: on an app host the app tier's rollouts
# rewrite it (operations/apps.py), elsewhere this role does from the inventory.
FILES = Path(__file__).resolve().parent.parent / "files" / "nginx_tls"
UPSTREAM_SERVERS_DIR = "/etc/nginx/galion-upstreams"


# stub_status, on loopback only: read by the nginx exporter on the same host.
def stub_status_url() -> str:
    return f"http://127.0.0.1:{host.data.nginx_tls_status_port}/nginx_status"


CONF_D = "/etc/nginx/conf.d"
# This role's files of conf.d named after an upstream or a virtual host; a `.galion-retired`
# one was taken out of the include glob (*.conf) by a run that stopped before its reload.
PER_NAME_FILE = re.compile(r"^(10-upstream|20-vhost)-(.+)\.conf(\.galion-retired)?$")
RETIRED = ".galion-retired"
# The first line of every file this role writes: only such files are ever retired.
MANAGED = "# Managed by galion-infra (operations/nginx_tls.py)"


def retire_command(stale: list[str], already_out: list[str]) -> str:
    """Take files no longer in the data out of nginx's include glob (`stale`: live files;
    `already_out`: live paths whose file a stopped run had renamed already), then nginx -t;
    if nginx refuses the config without them, every one is put back and the run fails."""
    q = shlex.quote
    out = [f"mv -f {q(p)} {q(p + RETIRED)}" for p in stale]
    back = "; ".join(f"mv -f {q(p + RETIRED)} {q(p)}" for p in [*stale, *already_out])
    refused = "nginx -t refused the config without them: put back, nothing reloaded"
    return " && ".join(
        [*out, f"{{ nginx -t -q || {{ {back}; echo {q(refused)} >&2; exit 1; }}; }}"]
    )


def upstream_servers_file(name: str) -> str:
    return f"{UPSTREAM_SERVERS_DIR}/{name}.servers"


def upstream_servers(port: int) -> list[str]:
    return topology.upstream_servers(inventory, host, port)


def _nginx_file(name: str, dest: str, content: str):
    relative = dest[len("/etc/nginx/") :]
    return config_file(
        name=name, dest=dest, content=content, validate=commands.nginx_test_command(relative)
    )


def _packages():
    brotli = bool(host.get_fact(AptCandidate, package="libnginx-mod-http-brotli-filter"))
    packages = ["nginx", "certbot", "openssl"]
    if brotli:
        packages += ["libnginx-mod-http-brotli-filter", "libnginx-mod-http-brotli-static"]
    apt.packages(
        name="Install nginx and certbot" + (" (+ brotli)" if brotli else ""),
        packages=packages,
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    for path in (WEBROOT, "/var/cache/nginx", "/etc/nginx/tls"):
        files.directory(name=f"Directory {path}", path=path, mode="755")
    # The 404s (fail2ban's botsearch jail), the status listener's requests.
    nginx_log_files(["not-found.log", "status.log"])
    files.link(
        name="No distro default site", path="/etc/nginx/sites-enabled/default", present=False
    )
    return brotli


def _placeholder_certificates(vhosts):
    """nginx must start before the first certificate exists: a self-signed placeholder,
    linked where the vhost reads its certificate until certbot replaces the links."""
    if not host.get_fact(PathExists, path=f"{PLACEHOLDER}/fullchain.pem"):
        server.shell(
            name="Self-signed placeholder certificate", commands=[placeholder_certificate_command()]
        )
    for vhost in vhosts:
        tls = f"/etc/nginx/tls/{vhost['name']}"
        if host.get_fact(PathExists, path=f"{tls}/fullchain.pem"):
            continue
        server.shell(
            name=f"Placeholder certificate for {vhost['name']} until it is issued",
            commands=[
                f"install -d -m 0755 {tls}",
                *serve_certificate_commands(vhost["name"], PLACEHOLDER),
            ],
        )


def _configs(brotli: bool, vhosts):
    data = host.data
    release = host.get_fact(OsRelease)
    changed = [
        _nginx_file(
            "nginx.conf (workers, modules)",
            "/etc/nginx/nginx.conf",
            render("nginx_tls/etc/nginx/nginx.conf.j2"),
        )
    ]
    changed.append(
        config_file(
            name="Security headers snippet",
            dest="/etc/nginx/snippets/galion-headers.conf",
            content=render("nginx_tls/etc/nginx/snippets/galion-headers.conf.j2"),
        )
    )
    changed.append(
        _nginx_file(
            "HTTP settings: logs, compression, rate limits, caches, TLS",
            "/etc/nginx/conf.d/00-galion-http.conf",
            render(
                "nginx_tls/etc/nginx/conf.d/00-galion-http.conf.j2",
                client_max_body_size=data.nginx_tls_client_max_body_size,
                access_log_flush=data.nginx_tls_access_log_flush_seconds,
                brotli=brotli,
                cloudflare=data.nginx_tls_behind_cloudflare,
                cloudflare_ranges=data.nginx_tls_cloudflare_ranges,
                rate_api=data.nginx_tls_rate_api_per_minute,
                rate_general=data.nginx_tls_rate_general_per_minute,
                rate_limit_exempt=data.nginx_tls_rate_limit_exempt_cidrs,
                cache_api_size=data.nginx_tls_cache_api_size,
                cache_static_size=data.nginx_tls_cache_static_size,
            ),
        )
    )
    files.directory(
        name="Directory of the upstreams' server lists", path=UPSTREAM_SERVERS_DIR, mode="755"
    )
    app_host = topology.is_app_host(inventory, host)
    for name, port in sorted(data.nginx_tls_upstream_ports.items()):
        servers_file = upstream_servers_file(name)
        if app_host and host.get_fact(PathExists, path=servers_file):
            # The app tier's rollouts switch this host's own containers (galion-rollout).
            host.noop(f"{servers_file} belongs to the app tier's rollouts")
        else:
            changed.append(
                config_file(
                    name=f"Servers of upstream {name}",
                    dest=servers_file,
                    content=render(
                        "nginx_tls/etc/nginx/galion-upstreams/servers.j2",
                        servers=upstream_servers(port),
                    ),
                )
            )
        changed.append(
            _nginx_file(
                f"Upstream {name}",
                f"/etc/nginx/conf.d/10-upstream-{name}.conf",
                render(
                    "nginx_tls/etc/nginx/conf.d/upstream.conf.j2",
                    name=name,
                    servers_file=servers_file,
                ),
            )
        )
    changed.append(
        _nginx_file(
            "Status listener on loopback: stub_status, the apps' metrics",
            "/etc/nginx/conf.d/30-galion-status.conf",
            render(
                "nginx_tls/etc/nginx/conf.d/30-galion-status.conf.j2",
                status_port=data.nginx_tls_status_port,
                metrics_path=data.nginx_tls_app_metrics_path,
                metrics_upstreams=data.nginx_tls_metrics_upstreams,
            ),
        )
    )
    for vhost in vhosts:
        changed.append(
            _nginx_file(
                f"Virtual host {vhost['name']}",
                f"/etc/nginx/conf.d/20-vhost-{vhost['name']}.conf",
                render(
                    "nginx_tls/etc/nginx/conf.d/vhost.conf.j2",
                    vhost=vhost,
                    names=[vhost["name"], *vhost.get("aliases", [])],
                    http2_directive=(release.get("id"), release.get("version_id"))
                    not in LEGACY_HTTP2,
                    connections_per_ip=data.nginx_tls_connections_per_ip,
                    burst_api=data.nginx_tls_rate_api_burst,
                    burst_general=data.nginx_tls_rate_general_burst,
                    cache_api_valid=data.nginx_tls_cache_api_valid,
                    cache_static_valid=data.nginx_tls_cache_static_valid,
                    metrics_path=data.nginx_tls_app_metrics_path,
                    upstream_connect_timeout=data.nginx_tls_upstream_connect_timeout,
                ),
            )
        )
    changed.append(
        _nginx_file(
            "Port 443's sockets: one per worker (reuseport)",
            "/etc/nginx/conf.d/90-galion-https-sockets.conf",
            render("nginx_tls/etc/nginx/conf.d/90-galion-https-sockets.conf.j2"),
        )
    )
    wanted = {f"10-upstream-{n}.conf" for n in data.nginx_tls_upstream_ports}
    wanted |= {f"20-vhost-{v['name']}.conf" for v in vhosts}
    retire = _retire(wanted)
    if retire:
        changed.append(retire)
    systemd.service(name="nginx enabled and running", service="nginx", running=True, enabled=True)
    server.shell(
        name="Reload nginx (nginx -t first) if its config changed",
        commands=[commands.NGINX_RELOAD],
        _if=any_changed(*changed),
    )
    if retire:
        server.shell(
            name="Delete the retired nginx files (reloaded without them)",
            commands=[f"rm -f {shlex.quote(CONF_D)}/*{RETIRED}"],
            _if=retire.did_change,
        )


def _retire(wanted: set[str]):
    """A virtual host or upstream removed from the data stops being served: its file
    leaves conf.d (after nginx -t) and the reload drops it. Only files this role wrote
    (its header); an operator's own file is never touched, whatever its name. Certificates
    are kept (a name added back serves its lineage again; `certbot delete --cert-name NAME`
    frees it)."""
    found = host.get_fact(FilesMarked, path=CONF_D, names="*.conf*", marker=MANAGED)
    stale, already_out = [], []
    for path in sorted(found):
        match = PER_NAME_FILE.match(Path(path).name)
        if not match:
            continue
        live = path.removesuffix(RETIRED)
        if Path(live).name in wanted:
            continue
        if not match.group(3):
            stale.append(live)
        elif live not in stale:  # a stopped run renamed it; not a second copy of a live one
            already_out.append(live)
    if not stale and not already_out:
        return None
    names = ", ".join(Path(p).name for p in [*stale, *already_out])
    return server.shell(
        name=f"Retire nginx files no longer in the data: {names}",
        commands=[retire_command(stale, already_out)],
    )


def _certificates(vhosts):
    data = host.data
    env = ""
    if data.nginx_tls_acme_ca_bundle:
        config_file(
            name="CA bundle of the ACME server",
            dest=ACME_CA,
            content=Path(data.nginx_tls_acme_ca_bundle).expanduser().read_text(),
        )
        env = f"REQUESTS_CA_BUNDLE={ACME_CA} "
    dropin = config_file(
        name="certbot renewals use the same ACME trust",
        dest="/etc/systemd/system/certbot.service.d/galion.conf",
        content=(
            "# Managed by galion-infra (operations/nginx_tls.py).\n[Service]\n"
            + (f"Environment=REQUESTS_CA_BUNDLE={ACME_CA}\n" if env else "")
        ),
    )
    systemd.daemon_reload(name="systemd reads the certbot drop-in", _if=dropin.did_change)
    config_file(
        name="Renewed certificates reload nginx (never restart)",
        dest="/etc/letsencrypt/renewal-hooks/deploy/galion-reload-nginx",
        mode="755",
        content="#!/bin/sh\n# Managed by galion-infra (operations/nginx_tls.py).\n"
        f"{commands.NGINX_RELOAD}\n",
    )
    for vhost in vhosts:
        names = sorted([vhost["name"], *vhost.get("aliases", [])])
        if host.get_fact(CertbotLineage, lineage=vhost["name"]) == names:
            host.noop(f"certificate for {vhost['name']} is issued")
            link = f"/etc/nginx/tls/{vhost['name']}"
            files.link(
                name=f"{vhost['name']} serves its issued certificate",
                path=f"{link}/fullchain.pem",
                target=f"/etc/letsencrypt/live/{vhost['name']}/fullchain.pem",
            )
            files.link(
                name=f"{vhost['name']} serves its issued key",
                path=f"{link}/privkey.pem",
                target=f"/etc/letsencrypt/live/{vhost['name']}/privkey.pem",
            )
            continue
        since = host.get_fact(SecondsSinceFailure, path=f"{ACME_FAILED_DIR}/{vhost['name']}")
        wait = int(data.nginx_tls_acme_retry_minutes) * 60
        if since is not None and since < wait:
            host.log(
                f"certificate for {vhost['name']} not issued yet: the last attempt failed "
                f"{since // 60} min ago; the next one in {(wait - since) // 60 + 1} min "
                "(Let's Encrypt allows 5 failed validations per name and hour). The "
                "placeholder certificate is served meanwhile.",
                logger.warning,
            )
            continue
        # A failure (DNS not pointing here yet) is a warning, not a failed run: the edge
        # keeps the placeholder and every other step of the role still converges.
        server.shell(
            name=f"Certificate for {', '.join(names)} (webroot)",
            commands=[issue_certificate_command(vhost["name"], names, data, env)],
            _ignore_errors=True,
        )
    systemd.service(
        name="certbot renewal timer", service="certbot.timer", running=True, enabled=True
    )


def _fail2ban():
    jail = config_file(
        name="fail2ban jails for nginx (limit-req, botsearch)",
        dest="/etc/fail2ban/jail.d/galion-nginx.local",
        content=render(
            "nginx_tls/etc/fail2ban/galion-nginx.local.j2",
            bantime=host.data.nginx_tls_fail2ban_bantime,
            bantime_max=host.data.nginx_tls_fail2ban_bantime_max,
        ),
        validate=commands.fail2ban_jail_test("jail.d/galion-nginx.local"),
    )
    systemd.service(
        name="Reload fail2ban for the nginx jails",
        service="fail2ban",
        reloaded=True,
        _if=jail.did_change,
    )


def _request_metrics(vhosts: list[dict]):
    """Responses by status class and request durations per public name, from the access
    log (stub_status has neither): the error-rate and latency alerts read them."""
    names = sorted({name for v in vhosts for name in [v["name"], *v.get("aliases", [])]})
    exporters.textfile_collector(
        "galion-nginx-metrics",
        FILES,
        service=render(
            "nginx_tls/etc/systemd/system/galion-nginx-metrics.service.j2",
            textfile_dir=exporters.TEXTFILE_DIR,
            names=names,
        ),
    )


@deploy("Edge: nginx and TLS")
def nginx_tls():
    vhosts = host.data.nginx_tls_vhosts
    brotli = _packages()
    _placeholder_certificates(vhosts)
    _configs(brotli, vhosts)
    _certificates(vhosts)
    _fail2ban()
    _request_metrics(vhosts)
    listen = topology.exporter_bind_address(inventory, host)
    exporters.exporter(
        "nginx exporter",
        "prometheus-nginx-exporter",
        [
            f"--nginx.scrape-uri={stub_status_url()}",
            f"--web.listen-address={listen}:{host.data.nginx_tls_exporter_port}",
        ],
    )
