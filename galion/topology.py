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


def data_tier_bind_addresses(inventory, this) -> list[str]:
    """What the data tier listens on beyond loopback: the private address, and only when
    another host connects."""
    return [private_address(this)] if data_tier_clients(inventory, this) else []


def is_app_host(inventory, this) -> bool:
    return any(h.name == this.name for h in group(inventory, "app"))


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
