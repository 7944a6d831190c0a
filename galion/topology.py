"""Cross-host questions, answered from the inventory's groups: the one place that knows
which host talks to which. Roles ask here and never import each other.

Every function takes the inventory and the host being converged explicitly (roles pass
pyinfra's `inventory` and `host`), so the answers are testable without a connection.
"""

import ipaddress


def private_address(h) -> str:
    """The address other hosts reach `h` on: its `private_address`, never its public
    one. Preflight refuses an inventory of several hosts where one has none; a single
    box never asks (its services talk over loopback and its Docker bridge)."""
    address = h.data.get("private_address")
    if not address:
        raise ValueError(f"{h.name} has no private_address (preflight should have said so)")
    return address


def host_cidr(address: str) -> str:
    """A single host as pg_hba wants it (a name stays a name)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return f"{ip}/{ip.max_prefixlen}"


def group(inventory, name: str) -> list:
    return list(inventory.get_group(name, []))


def data_tier_clients(inventory, this) -> list:
    """Other hosts that connect to this host's PostgreSQL, PgBouncer and Redis: the app
    hosts elsewhere (a host that is also an app host connects over loopback)."""
    return [h for h in group(inventory, "app") if h.name != this.name]


def database_replicas(inventory) -> list:
    """Hosts that stream WAL from the primary."""
    return group(inventory, "db_replica")


def primary(inventory):
    """The PostgreSQL primary (the one host of group `db`)."""
    return group(inventory, "db")[0]


def member(inventory, this, name: str) -> bool:
    """Whether `this` is in group `name`."""
    return any(h.name == this.name for h in group(inventory, name))


def is_replica(inventory, this) -> bool:
    return member(inventory, this, "db_replica")


def database_peers(inventory, this) -> list:
    """The other database hosts (primary and replicas): they replicate from each other,
    and after a failover the roles turn around (pg_rewind needs the same access)."""
    db = group(inventory, "db") + database_replicas(inventory)
    return [h for h in db if h.name != this.name]


def data_tier_bind_addresses(inventory, this) -> list[str]:
    """What the data tier listens on beyond loopback: the private address, and only when
    another host connects (an app host, or another database host)."""
    others = data_tier_clients(inventory, this) or database_peers(inventory, this)
    return [private_address(this)] if others else []


def is_app_host(inventory, this) -> bool:
    return member(inventory, this, "app")


def container_gateway(inventory, this) -> str | None:
    """The host's address on its Docker bridge (`docker_bridge_address`): where the app
    containers of an app host reach services on the host itself. None off app hosts."""
    if not is_app_host(inventory, this):
        return None
    return str(ipaddress.ip_interface(this.data.get("docker_bridge_address")).ip)


def container_network(inventory, this) -> str | None:
    """The app containers' source network on an app host (the bridge's subnet), else None."""
    if not is_app_host(inventory, this):
        return None
    return str(ipaddress.ip_interface(this.data.get("docker_bridge_address")).network)


def local_data_tier_for_containers(inventory, this) -> str | None:
    """The bridge address PgBouncer and Redis listen on when this host runs both the data
    tier and app containers (the single box), else None."""
    primary = group(inventory, "db")
    if primary and primary[0].name == this.name:
        return container_gateway(inventory, this)
    return None


def database_address(inventory, this) -> str:
    """Where the app containers of an app host find PgBouncer and Redis: the host's own
    Docker bridge address on the same box (127.0.0.1 inside a container is the container),
    else the primary's private address."""
    primary = group(inventory, "db")
    if not primary or primary[0].name == this.name:
        return container_gateway(inventory, this) or "127.0.0.1"
    return private_address(primary[0])


def read_database_address(inventory, this, serving: set[str] | None = None) -> str:
    """Where the app containers of an app host send read-only queries: the first streaming
    replica's PgBouncer in a fleet, else the primary's (database_address). `serving`: the
    replicas that stream after this run (None: every one of db_replica)."""
    replicas = [h for h in database_replicas(inventory) if serving is None or h.name in serving]
    if replicas:
        return private_address(replicas[0])
    return database_address(inventory, this)


def upstream_servers(inventory, this, port: int) -> list[str]:
    """`address:port` of the service on every app host: loopback on the box itself,
    private addresses in a fleet."""
    return [
        f"{'127.0.0.1' if h.name == this.name else private_address(h)}:{port}"
        for h in group(inventory, "app")
    ]


def monitoring_hosts(inventory) -> list:
    """Hosts that run Prometheus and Alertmanager (the `monitoring` group)."""
    return group(inventory, "monitoring")


def exporter_bind_address(inventory, this) -> str:
    """Where this host's exporters listen: loopback when only this host scrapes them (the
    single box), else the private address the monitoring hosts reach."""
    scrapers = monitoring_hosts(inventory)
    if all(h.name == this.name for h in scrapers):
        return "127.0.0.1"
    return private_address(this)


def scrape_address(inventory, this, target) -> str:
    """How Prometheus on `this` reaches `target`'s exporters: where they listen."""
    return exporter_bind_address(inventory, target)


# The UFW rules' comments name a service by its port knob's old name: a renamed knob
# must not rewrite every fleet host's firewall.
_LABELS = {"nginx_tls_exporter_port": "nginx_exporter", "nginx_tls_status_port": "nginx_status"}


def _service_label(port_knob: str) -> str:
    return _LABELS.get(port_knob, port_knob.removesuffix("_port"))


def _others(hosts, this) -> list:
    return [h for h in hosts if h.name != this.name]


def firewall_peers(inventory, this) -> list[tuple[int, str, str]]:
    """(port, source address, what) for every service of `this` another host uses: the
    UFW rules beyond SSH and the public ports. Empty on the single box, whose services
    talk over loopback and its Docker bridge.

    - PgBouncer (and Redis on the primary) from the app hosts;
    - PostgreSQL between the database hosts (replication, pg_rewind after a failover);
    - each upstream's port on an app host from the edge hosts;
    - the exporters, and the apps' metrics on an app host, from the monitoring hosts;
    - Prometheus and Alertmanager from the other monitoring hosts.
    """
    d = this.data
    primary_here = member(inventory, this, "db")
    is_db = primary_here or is_replica(inventory, this)
    edge_here = member(inventory, this, "edge")
    app_proxy_here = is_app_host(inventory, this) and not edge_here
    services: list[tuple[int, list, str]] = []
    if is_db:
        apps = _others(group(inventory, "app"), this)
        services.append((d.get("pgbouncer_port"), apps, "pgbouncer from app hosts"))
        services.append(
            (d.get("postgres_port"), database_peers(inventory, this), "postgres between db hosts")
        )
        if primary_here:
            services.append((d.get("redis_port"), apps, "redis from app hosts"))
    if app_proxy_here:
        edges = _others(group(inventory, "edge"), this)
        for name, port in sorted((d.get("nginx_tls_upstream_ports") or {}).items()):
            services.append((port, edges, f"{name} from the edge"))
    scrapers = _others(monitoring_hosts(inventory), this)
    exporters = ["node_exporter_port"]
    if is_db:
        exporters.append("postgres_exporter_port")
    if primary_here:
        exporters.append("redis_exporter_port")
    if edge_here:
        exporters.append("nginx_tls_exporter_port")
    if app_proxy_here:
        exporters.append("nginx_tls_status_port")
    if member(inventory, this, "monitoring"):
        exporters += ["monitoring_prometheus_port", "monitoring_alertmanager_port"]
    for key in exporters:
        services.append((d.get(key), scrapers, f"{_service_label(key)} from monitoring"))
    return [
        (port, private_address(peer), what)
        for port, peers, what in services
        for peer in peers
        if port
    ]
