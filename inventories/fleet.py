# The split fleet of docs/SCALING.md's later stages: an edge (load balancer), two app
# hosts, a PostgreSQL primary with its backups, a streaming replica and a monitoring
# host. The same roles as inventories/prod.py; only the groups differ. Edit this file.
#
#     pyinfra inventories/fleet.py deploy.py --dry --diff   # what would change
#     pyinfra inventories/fleet.py deploy.py                # converge every host at once
#     pyinfra inventories/fleet.py actions/failover.py      # fail over (docs/FLEET.md)
#
# Every host needs `private_address`: its address on the provider's private network.
# PostgreSQL, PgBouncer, Redis, the exporters and the app hosts' ports listen there, and
# UFW admits each only from the hosts that use it (galion/topology.py: firewall_peers).
# Preflight refuses a host without one, or two hosts sharing one.

_common = {
    "ssh_user": "deploy",
    "ssh_key": "~/.ssh/id_ed25519",
    "_sudo": True,
    # Keys allowed to log in as the deploy user: a public key, or a path to a .pub file.
    "base_deploy_authorized_keys": ["~/.ssh/id_ed25519.pub"],
}


def _host(name: str, public: str, private: str, **more):
    return (name, {**_common, "ssh_hostname": public, "private_address": private, **more})


_edge1 = _host("edge1", "203.0.113.10", "10.0.0.10")
_app1 = _host("app1", "203.0.113.21", "10.0.0.21")
_app2 = _host("app2", "203.0.113.22", "10.0.0.22")
# Pinned on both database hosts: a replica runs the primary's major.
_db1 = _host("db1", "203.0.113.31", "10.0.0.31", postgres_version=16)
_db2 = _host("db2", "203.0.113.32", "10.0.0.32", postgres_version=16)
_mon1 = _host("mon1", "203.0.113.40", "10.0.0.40")

edge = [_edge1]
app = [_app1, _app2]
# One primary; its backups (pgBackRest) run beside it.
db = [_db1]
backups = [_db1]
# Streaming replicas of the primary (hot standby, read-only): seeded by the first
# converge, never re-cloned while healthy.
db_replica = [_db2]
monitoring = [_mon1]
