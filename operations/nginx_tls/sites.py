"""One conf.d file per upstream (its servers in a file of their own) and one per
virtual host, from the data."""

from pyinfra import host, inventory
from pyinfra.facts.server import OsRelease
from pyinfra.operations import files

from galion import topology
from galion.facts.files import PathExists
from galion.ops import config_file, render
from galion.paths import UPSTREAM_SERVERS_DIR

from .reload import nginx_file

# Distros whose nginx predates `http2 on;` (1.25.1): Debian 12 (1.22), Ubuntu 24.04 (1.24).
LEGACY_HTTP2 = {("debian", "12"), ("ubuntu", "24.04")}


def upstream_servers_file(name: str) -> str:
    """An upstream's `server` lines: on an app host the app tier's rollouts rewrite it
    (operations/apps/), elsewhere this role does from the inventory."""
    return f"{UPSTREAM_SERVERS_DIR}/{name}.servers"


def upstream_servers(port: int) -> list[str]:
    return topology.upstream_servers(inventory, host, port)


def upstreams() -> list:
    """Each upstream's servers file (unless the app tier's rollouts own it) and its
    conf.d file: the operations, in order."""
    data = host.data
    changed = []
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
            nginx_file(
                f"Upstream {name}",
                f"/etc/nginx/conf.d/10-upstream-{name}.conf",
                render(
                    "nginx_tls/etc/nginx/conf.d/upstream.conf.j2",
                    name=name,
                    servers_file=servers_file,
                ),
            )
        )
    return changed


def virtual_hosts(vhosts) -> list:
    """One conf.d file per public name and its aliases: the operations, in order."""
    data = host.data
    release = host.get_fact(OsRelease)
    changed = []
    for vhost in vhosts:
        changed.append(
            nginx_file(
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
    return changed


def wanted_files(vhosts) -> set[str]:
    """The names of the per-upstream and per-host files of conf.d the data asks for."""
    wanted = {f"10-upstream-{n}.conf" for n in host.data.nginx_tls_upstream_ports}
    wanted |= {f"20-vhost-{v['name']}.conf" for v in vhosts}
    return wanted
