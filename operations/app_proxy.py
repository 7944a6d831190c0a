"""The nginx in front of an app host's containers, on app hosts without the edge (a
fleet's app servers): it listens on the host's private address on each upstream's port,
the edge balances over those, and galion-rollout switches its servers files between a
service's two containers exactly as on the single box, where the edge's nginx does this.

The edge's nginx keeps everything public (TLS, headers, limits, caches, logs for
fail2ban); this one only passes requests on, logs them for the rollout's error watch and
serves the apps' /metrics to the monitoring hosts."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import commands, topology
from galion.facts.files import PathExists
from galion.ops import config_file, nginx_log_files, render, sysctl_values
from galion.paths import UPSTREAM_SERVERS_DIR
from galion.role import Role

CONF = "/etc/nginx/conf.d/00-galion-app-proxy.conf"

# Its knobs are the edge's (nginx_tls_upstream_ports, nginx_tls_metrics_upstreams,
# nginx_tls_app_metrics_path) and the shared nginx_tls_status_port: the same ports and paths on
# both sides of the balancer.
KNOBS = {}

ROLE = Role(
    groups=("app",),
    # After the edge (on the single box the edge's nginx does this), before the apps.
    order=65,
    knob_prefixes=("app_proxy_",),
)


def needed(inventory, this) -> bool:
    """Only where the edge's nginx is not on the same host."""
    return not topology.member(inventory, this, "edge")


def config(data, inventory, this) -> str:
    return render(
        "app_proxy/etc/nginx/conf.d/00-galion-app-proxy.conf.j2",
        upstreams=sorted(data.nginx_tls_upstream_ports.items()),
        servers_dir=UPSTREAM_SERVERS_DIR,
        listen=topology.private_address(this),
        status_listen=topology.exporter_bind_address(inventory, this),
        status_port=data.nginx_tls_status_port,
        metrics_path=data.nginx_tls_app_metrics_path,
        metrics_upstreams=data.nginx_tls_metrics_upstreams,
        access_log_flush=data.nginx_tls_access_log_flush_seconds,
    )


def first_servers_file(name: str, port: int) -> str:
    """Before the first rollout: the plan port on loopback, where slot "a" publishes."""
    return (
        f"# Written once by galion-infra (operations/app_proxy.py); galion-rollout owns it.\n"
        f"server 127.0.0.1:{port} max_fails=0;\n"
    )


@deploy("App host proxy (nginx in front of the containers)")
def app_proxy():
    if not needed(inventory, host):
        host.noop("the edge's nginx is on this host and fronts the containers")
        return
    data = host.data
    # After a reboot the private interface may come up after nginx: bind its address
    # anyway, instead of an app host out of the rotation until someone starts nginx.
    values = {"net.ipv4.ip_nonlocal_bind": 1, "net.ipv6.ip_nonlocal_bind": 1}
    config_file(
        name="nginx may bind the private address before it is up",
        dest="/etc/sysctl.d/91-galion-app-proxy.conf",
        content=render("shared/sysctl.conf.j2", values=values),
    )
    sysctl_values(name="Non-local binds applied", values=values)
    apt.packages(
        name="Install nginx", packages=["nginx"], update=True, cache_time=3600, no_recommends=True
    )
    files.link(
        name="No distro default site", path="/etc/nginx/sites-enabled/default", present=False
    )
    nginx_log_files(["status.log"])  # the status listener's requests
    files.directory(
        name="Directory of the upstreams' server lists", path=UPSTREAM_SERVERS_DIR, mode="755"
    )
    # The apps role's rollouts write these files; this role only writes a missing one.
    written = []
    for name, port in sorted(data.nginx_tls_upstream_ports.items()):
        path = f"{UPSTREAM_SERVERS_DIR}/{name}.servers"
        if host.get_fact(PathExists, path=path):
            host.noop(f"{path} belongs to the app tier's rollouts")
            continue
        written.append(
            config_file(
                name=f"First servers of upstream {name}",
                dest=path,
                content=first_servers_file(name, port),
            )
        )
    conf = config_file(
        name="Listeners on the private address, one per upstream, and the apps' metrics",
        dest=CONF,
        content=config(data, inventory, host),
        validate=commands.nginx_test_command(CONF[len("/etc/nginx/") :]),
    )
    systemd.service(name="nginx enabled and running", service="nginx", running=True, enabled=True)
    server.shell(
        name="Reload nginx (nginx -t first) if its config changed",
        commands=[commands.NGINX_RELOAD],
        _if=any_changed(conf, *written),
    )
