"""Edge: nginx reverse proxy with Let's Encrypt (webroot), Mozilla intermediate TLS,
security headers everywhere, per-IP rate limits (429), caches, WebSockets."""

import shlex
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion.facts import AptCandidate, CertbotLineage, PathExists
from galion.ops import config_file, render
from operations.base import fail2ban_jail_test
from operations.postgres import private_address

# Distros whose nginx predates `http2 on;` (1.25.1): Debian 12 (1.22), Ubuntu 24.04 (1.24).
LEGACY_HTTP2 = {("debian", "12"), ("ubuntu", "24.04")}
ACME_CA = "/etc/galion/acme-ca.pem"
WEBROOT = "/var/www/letsencrypt"
# nginx -t on a scratch copy of /etc/nginx with the staged file in place of the live one.
NGINX_TEST = ("d=$(mktemp -d) && cp -a /etc/nginx/. $d/ && cp {staged} $d/%s && "
              "rm -f $d/%s.galion-new && grep -rlZ /etc/nginx/ $d | xargs -0 -r sed -i \"s#/etc/nginx/#$d/#g\" && "
              "nginx -t -q -c $d/nginx.conf; r=$?; rm -rf $d; exit $r")


def required_secrets(data) -> list[str]:
    return []


def upstream_servers(port: int) -> list[str]:
    """Every app host: loopback on the box itself, private addresses in a fleet."""
    servers = []
    for h in inventory.get_group("app", []):
        address = "127.0.0.1" if h.name == host.name else private_address(h)
        servers.append(f"{address}:{port}")
    return servers


def _nginx_file(name: str, dest: str, content: str):
    relative = dest[len("/etc/nginx/"):]
    return config_file(name=name, dest=dest, content=content,
                       validate=NGINX_TEST % (relative, relative))


def _packages():
    brotli = bool(host.get_fact(AptCandidate, package="libnginx-mod-http-brotli-filter"))
    packages = ["nginx", "certbot", "openssl"]
    if brotli:
        packages += ["libnginx-mod-http-brotli-filter", "libnginx-mod-http-brotli-static"]
    apt.packages(name="Install nginx and certbot" + (" (+ brotli)" if brotli else ""),
                 packages=packages, update=True, cache_time=3600, no_recommends=True)
    for path in (WEBROOT, "/var/cache/nginx", "/etc/nginx/tls"):
        files.directory(name=f"Directory {path}", path=path, mode="755")
    files.link(name="No distro default site", path="/etc/nginx/sites-enabled/default", present=False)
    return brotli


def _placeholder_certificates(vhosts):
    """nginx must start before the first certificate exists: a self-signed placeholder,
    linked where the vhost reads its certificate until certbot replaces the links."""
    placeholder = "/etc/nginx/tls/placeholder"
    if not host.get_fact(PathExists, path=f"{placeholder}/fullchain.pem"):
        server.shell(name="Self-signed placeholder certificate", commands=[
            f"install -d -m 0700 {placeholder} && openssl req -x509 -newkey rsa:2048 -nodes "
            f"-days 3650 -subj /CN=placeholder.invalid -keyout {placeholder}/privkey.pem "
            f"-out {placeholder}/fullchain.pem 2>/dev/null"])
    for vhost in vhosts:
        tls = f"/etc/nginx/tls/{vhost['name']}"
        if host.get_fact(PathExists, path=f"{tls}/fullchain.pem"):
            continue
        server.shell(name=f"Placeholder certificate for {vhost['name']} until it is issued",
                     commands=[f"install -d -m 0755 {tls}",
                               f"ln -sfn {placeholder}/fullchain.pem {tls}/fullchain.pem",
                               f"ln -sfn {placeholder}/privkey.pem {tls}/privkey.pem"])


def _configs(brotli: bool, vhosts):
    data = host.data
    release = host.get_fact(OsRelease)
    changed = [_nginx_file("nginx.conf (workers, modules)", "/etc/nginx/nginx.conf",
                           render("nginx_tls/etc/nginx/nginx.conf.j2"))]
    changed.append(config_file(name="Security headers snippet", dest="/etc/nginx/snippets/galion-headers.conf",
                               content=render("nginx_tls/etc/nginx/snippets/galion-headers.conf.j2")))
    changed.append(_nginx_file(
        "HTTP settings: logs, compression, rate limits, caches, TLS", "/etc/nginx/conf.d/00-galion-http.conf",
        render("nginx_tls/etc/nginx/conf.d/00-galion-http.conf.j2",
               client_max_body_size=data.nginx_client_max_body_size, brotli=brotli,
               cloudflare=data.nginx_behind_cloudflare, cloudflare_ranges=data.nginx_cloudflare_ranges,
               rate_api=data.nginx_rate_api_per_minute, rate_general=data.nginx_rate_general_per_minute,
               cache_api_size=data.nginx_cache_api_size,
               cache_static_size=data.nginx_cache_static_size)))
    for name, port in sorted(data.nginx_upstream_ports.items()):
        changed.append(_nginx_file(f"Upstream {name}", f"/etc/nginx/conf.d/10-upstream-{name}.conf",
                                   render("nginx_tls/etc/nginx/conf.d/upstream.conf.j2", name=name,
                                          servers=upstream_servers(port))))
    for vhost in vhosts:
        changed.append(_nginx_file(
            f"Virtual host {vhost['name']}", f"/etc/nginx/conf.d/20-vhost-{vhost['name']}.conf",
            render("nginx_tls/etc/nginx/conf.d/vhost.conf.j2", vhost=vhost,
                   names=[vhost["name"], *vhost.get("aliases", [])],
                   http2_directive=(release.get("id"), release.get("version_id")) not in LEGACY_HTTP2,
                   connections_per_ip=data.nginx_connections_per_ip,
                   burst_api=data.nginx_rate_api_burst, burst_general=data.nginx_rate_general_burst,
                   cache_api_valid=data.nginx_cache_api_valid,
                   cache_static_valid=data.nginx_cache_static_valid)))
    systemd.service(name="nginx enabled and running", service="nginx", running=True, enabled=True)
    server.shell(name="Reload nginx (nginx -t first) if its config changed",
                 commands=["nginx -t -q && systemctl reload nginx"], _if=any_changed(*changed))


def _certificates(vhosts):
    data = host.data
    env = ""
    if data.nginx_acme_ca_bundle:
        config_file(name="CA bundle of the ACME server", dest=ACME_CA,
                    content=Path(data.nginx_acme_ca_bundle).expanduser().read_text())
        env = f"REQUESTS_CA_BUNDLE={ACME_CA} "
    dropin = config_file(
        name="certbot renewals use the same ACME trust", dest="/etc/systemd/system/certbot.service.d/galion.conf",
        content=("# Managed by galion-infra (operations/nginx_tls.py).\n[Service]\n"
                 + (f"Environment=REQUESTS_CA_BUNDLE={ACME_CA}\n" if env else "")))
    systemd.daemon_reload(name="systemd reads the certbot drop-in", _if=dropin.did_change)
    config_file(name="Renewed certificates reload nginx (never restart)",
                dest="/etc/letsencrypt/renewal-hooks/deploy/galion-reload-nginx", mode="755",
                content="#!/bin/sh\n# Managed by galion-infra (operations/nginx_tls.py).\n"
                        "nginx -t -q && systemctl reload nginx\n")
    for vhost in vhosts:
        names = sorted([vhost["name"], *vhost.get("aliases", [])])
        if host.get_fact(CertbotLineage, lineage=vhost["name"]) == names:
            host.noop(f"certificate for {vhost['name']} is issued")
            link = f"/etc/nginx/tls/{vhost['name']}"
            files.link(name=f"{vhost['name']} serves its issued certificate", path=f"{link}/fullchain.pem",
                       target=f"/etc/letsencrypt/live/{vhost['name']}/fullchain.pem")
            files.link(name=f"{vhost['name']} serves its issued key", path=f"{link}/privkey.pem",
                       target=f"/etc/letsencrypt/live/{vhost['name']}/privkey.pem")
            continue
        domains = " ".join(f"-d {shlex.quote(n)}" for n in names)
        live = f"/etc/letsencrypt/live/{vhost['name']}"
        server.shell(name=f"Certificate for {', '.join(names)} (webroot)", commands=[
            f"{env}certbot certonly --webroot -w {WEBROOT} --cert-name {vhost['name']} {domains} "
            f"--server {shlex.quote(data.nginx_acme_directory)} --email {shlex.quote(data.operator_email)} "
            "--agree-tos --non-interactive --keep-until-expiring --expand --no-eff-email -q",
            f"ln -sfn {live}/fullchain.pem /etc/nginx/tls/{vhost['name']}/fullchain.pem",
            f"ln -sfn {live}/privkey.pem /etc/nginx/tls/{vhost['name']}/privkey.pem",
            "nginx -t -q && systemctl reload nginx"])
    systemd.service(name="certbot renewal timer", service="certbot.timer", running=True, enabled=True)


def _fail2ban():
    jail = config_file(name="fail2ban jails for nginx (limit-req, botsearch)",
                       dest="/etc/fail2ban/jail.d/galion-nginx.local",
                       content=render("nginx_tls/etc/fail2ban/galion-nginx.local.j2"),
                       validate=fail2ban_jail_test("galion-nginx.local"))
    systemd.service(name="Reload fail2ban for the nginx jails", service="fail2ban", reloaded=True,
                    _if=jail.did_change)


@deploy("Edge: nginx and TLS")
def nginx_tls():
    vhosts = host.data.nginx_vhosts
    brotli = _packages()
    _placeholder_certificates(vhosts)
    _configs(brotli, vhosts)
    _certificates(vhosts)
    _fail2ban()
