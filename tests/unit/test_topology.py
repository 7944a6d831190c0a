"""Cross-host answers from the inventory's groups (galion/topology.py), without hosts."""

from types import SimpleNamespace

import pytest

from galion import topology


class Inventory:
    def __init__(self, **groups):
        self.groups = groups

    def get_group(self, name, default=None):
        return self.groups.get(name, default)


def host(name, **data):
    return SimpleNamespace(name=name, data=data)


BOX = host("titanaxe", ssh_hostname="54.37.161.67", docker_bridge_address="172.19.0.1/24")
SINGLE = Inventory(app=[BOX], db=[BOX], edge=[BOX], backups=[BOX])

EDGE = host("edge1", ssh_hostname="203.0.113.1", private_address="10.0.0.1")
APP1 = host("app1", ssh_hostname="203.0.113.2", private_address="10.0.0.2")
APP2 = host("app2", ssh_hostname="203.0.113.3", private_address="10.0.0.3")
DB1 = host("db1", ssh_hostname="203.0.113.4", private_address="10.0.0.4")
DB2 = host("db2", ssh_hostname="203.0.113.5", private_address="10.0.0.5")
FLEET = Inventory(edge=[EDGE], app=[APP1, APP2], db=[DB1], db_replica=[DB2], backups=[DB1])


def test_single_box_keeps_the_data_tier_on_loopback():
    assert topology.data_tier_clients(SINGLE, BOX) == []
    assert topology.data_tier_bind_addresses(SINGLE, BOX) == []
    # The apps run in containers: 127.0.0.1 there is the container, the bridge is the box.
    assert topology.database_address(SINGLE, BOX) == "172.19.0.1"
    assert topology.local_data_tier_for_containers(SINGLE, BOX) == "172.19.0.1"
    assert topology.container_network(SINGLE, BOX) == "172.19.0.0/24"
    assert topology.upstream_servers(SINGLE, BOX, 8001) == ["127.0.0.1:8001"]
    assert topology.database_replicas(SINGLE) == []


def test_fleet_connects_over_private_addresses():
    assert topology.data_tier_clients(FLEET, DB1) == [APP1, APP2]
    assert topology.data_tier_bind_addresses(FLEET, DB1) == ["10.0.0.4"]
    assert topology.database_address(FLEET, APP2) == "10.0.0.4"
    assert topology.upstream_servers(FLEET, EDGE, 3001) == ["10.0.0.2:3001", "10.0.0.3:3001"]
    assert topology.database_replicas(FLEET) == [DB2]


def test_a_db_host_that_is_also_an_app_host_is_not_its_own_client():
    both = host(
        "both",
        ssh_hostname="198.51.100.9",
        private_address="10.0.0.9",
        docker_bridge_address="172.19.0.1/24",
    )
    inv = Inventory(app=[both, APP1], db=[both])
    assert topology.data_tier_clients(inv, both) == [APP1]
    assert topology.database_address(inv, both) == "172.19.0.1"
    assert topology.local_data_tier_for_containers(inv, APP1) is None
    assert topology.database_address(inv, APP1) == "10.0.0.9"
    assert topology.upstream_servers(inv, both, 8001) == ["127.0.0.1:8001", "10.0.0.2:8001"]


def test_a_db_host_of_a_fleet_binds_nothing_on_a_bridge():
    assert topology.container_gateway(FLEET, DB1) is None
    assert topology.local_data_tier_for_containers(FLEET, DB1) is None


def test_private_address_never_falls_back_to_the_public_one():
    assert topology.private_address(APP1) == "10.0.0.2"
    with pytest.raises(ValueError, match="titanaxe has no private_address"):
        topology.private_address(BOX)


def test_host_cidr_is_a_single_address_and_names_stay_names():
    assert topology.host_cidr("10.0.0.2") == "10.0.0.2/32"
    assert topology.host_cidr("2001:db8::1") == "2001:db8::1/128"
    assert topology.host_cidr("app1.internal") == "app1.internal"


PORTS = {
    "pgbouncer_port": 6432,
    "postgres_port": 5432,
    "redis_port": 6379,
    "node_exporter_port": 9100,
    "postgres_exporter_port": 9187,
    "redis_exporter_port": 9121,
    "nginx_tls_exporter_port": 9113,
    "nginx_tls_status_port": 8081,
    "monitoring_prometheus_port": 9090,
    "monitoring_alertmanager_port": 9093,
    "nginx_tls_upstream_ports": {"galion_api": 8001},
}


def _fleet_with_ports():
    hosts = {
        n: host(n, private_address=f"10.0.0.{i}", **PORTS)
        for i, n in enumerate(("edge1", "app1", "app2", "db1", "db2", "mon1"), start=1)
    }
    inv = Inventory(
        edge=[hosts["edge1"]],
        app=[hosts["app1"], hosts["app2"]],
        db=[hosts["db1"]],
        db_replica=[hosts["db2"]],
        backups=[hosts["db1"]],
        monitoring=[hosts["mon1"]],
    )
    return inv, hosts


def _peers(inv, h) -> set[tuple[int, str]]:
    return {(port, address) for port, address, _ in topology.firewall_peers(inv, h)}


def test_firewall_peers_admit_each_service_from_its_users_only():
    inv, h = _fleet_with_ports()
    assert _peers(inv, h["db1"]) == {
        (6432, "10.0.0.2"),
        (6432, "10.0.0.3"),
        (6379, "10.0.0.2"),
        (6379, "10.0.0.3"),
        (5432, "10.0.0.5"),
        (9100, "10.0.0.6"),
        (9187, "10.0.0.6"),
        (9121, "10.0.0.6"),
    }
    # The replica: PgBouncer for read-only queries, replication from the primary's side
    # (after a failover), no Redis.
    assert _peers(inv, h["db2"]) == {
        (6432, "10.0.0.2"),
        (6432, "10.0.0.3"),
        (5432, "10.0.0.4"),
        (9100, "10.0.0.6"),
        (9187, "10.0.0.6"),
    }
    assert _peers(inv, h["app1"]) == {(8001, "10.0.0.1"), (9100, "10.0.0.6"), (8081, "10.0.0.6")}
    assert _peers(inv, h["edge1"]) == {(9100, "10.0.0.6"), (9113, "10.0.0.6")}
    # Prometheus and Alertmanager answer only their own host (one monitoring host).
    assert _peers(inv, h["mon1"]) == set()


def test_firewall_rules_name_services_as_before_the_knob_renames():
    """The labels become the UFW rules' comments: a renamed port knob keeps its label,
    so no fleet host's firewall is rewritten."""
    inv, h = _fleet_with_ports()
    labels = {what for _, _, what in topology.firewall_peers(inv, h["edge1"])}
    assert labels == {"node_exporter from monitoring", "nginx_exporter from monitoring"}
    labels = {what for _, _, what in topology.firewall_peers(inv, h["app1"])}
    assert labels == {
        "galion_api from the edge",
        "node_exporter from monitoring",
        "nginx_status from monitoring",
    }


def test_the_single_box_opens_nothing_to_peers():
    box = host("titanaxe", **PORTS)
    inv = Inventory(app=[box], db=[box], edge=[box], backups=[box], monitoring=[box])
    assert topology.firewall_peers(inv, box) == []


def test_read_queries_go_to_the_replica_in_a_fleet_and_to_the_primary_without_one():
    assert topology.read_database_address(FLEET, APP1) == "10.0.0.5"
    assert topology.read_database_address(SINGLE, BOX) == "172.19.0.1"


def test_read_queries_go_to_the_primary_while_no_replica_streams():
    """A replica fenced or out of reach in this run, or refused: the primary's PgBouncer
    (app hosts reach it on its private address)."""
    assert topology.read_database_address(FLEET, APP1, serving={"db2"}) == "10.0.0.5"
    assert topology.read_database_address(FLEET, APP1, serving=set()) == "10.0.0.4"


def test_a_primary_with_a_replica_listens_on_its_private_address_even_without_app_hosts():
    inv = Inventory(db=[DB1], db_replica=[DB2])
    assert topology.data_tier_bind_addresses(inv, DB1) == ["10.0.0.4"]
    assert topology.data_tier_bind_addresses(inv, DB2) == ["10.0.0.5"]
    assert topology.is_replica(inv, DB2) and not topology.is_replica(inv, DB1)
