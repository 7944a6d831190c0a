"""UFW: default deny incoming; SSH rate-limited everywhere, then what the host's groups
and its peers (galion/topology.py) need."""

import ipaddress

from pyinfra import host, inventory

from galion import topology
from galion.ops import ufw_rules


def firewall(ssh_ports: list[int]):
    peers = topology.firewall_peers(inventory, host)
    prepend, rules = firewall_rules(host.data, host.groups, ssh_ports, peers)
    ufw_rules(
        name=f"UFW: default deny incoming, SSH on {' and '.join(map(str, ssh_ports))}, "
        "and what this host's groups need",
        prepend=prepend,
        rules=rules,
        defaults={"incoming": "deny", "outgoing": "allow", "routed": "deny"},
        must_allow_port=ssh_ports[0],
    )


def _ufw_source(cidr: str) -> str:
    """A source as ufw prints it back: a single address without /32 (/128)."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def firewall_rules(data, groups, ssh_ports=None, peers=()) -> tuple[list[str], list[str]]:
    """(prepend, rules) in the form `ufw show added` prints them. `ssh_ports`: the ports SSH
    is open on (default the `base_ssh_port` knob; two while SSH moves). `peers`: (port,
    address, what) of the other hosts that use a service here (galion/topology.py)."""
    ssh_ports = ssh_ports or [data.get("base_ssh_port")]
    prepend = [
        f"allow from {_ufw_source(cidr)} to any port {port} proto tcp comment 'galion: trusted ssh'"
        for port in ssh_ports
        for cidr in data.get("base_ssh_trusted_cidrs") or []
    ]
    rules = [f"limit {port}/tcp comment 'galion: ssh'" for port in ssh_ports]
    for group, ports in (data.get("base_firewall_ports_by_group") or {}).items():
        if group in groups:
            rules.extend(f"allow {p} comment 'galion: {group}'" for p in ports)
    if {"app", "db"} <= set(groups):
        # The single box: its app containers reach PgBouncer and Redis on the bridge.
        network = ipaddress.ip_interface(data.get("docker_bridge_address")).network
        rules.extend(
            f"allow from {network} to any port {data.get(key)} proto tcp "
            "comment 'galion: app containers'"
            for key in ("pgbouncer_port", "redis_port")
        )
    rules.extend(
        f"allow from {_ufw_source(address)} to any port {port} proto tcp comment 'galion: {what}'"
        for port, address, what in peers
    )
    return prepend, rules
