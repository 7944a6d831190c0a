"""PostgreSQL tuned for its host: the cluster, the apps' databases and roles, pg_hba,
streaming replicas and their failover scripts, the exporter (PgBouncer in front of it:
operations/pgbouncer.py)."""

import re
import shlex

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import server

from galion import postgresql, topology
from galion.ops import barrier
from galion.role import Role
from galion.validators import int_between, matches

from . import cluster, exporter, kernel, objects, replication, restarts
from .checks import check_inventory, required_secrets

KNOBS = {
    # Memory PostgreSQL may plan with, in MB; None: half the RAM on a host that also runs
    # the apps (16 GB box: 8 GB, so shared_buffers 2 GB as planned), 3/4 on a DB-only host.
    "postgres_memory_budget_mb": None,
    # Client connections PostgreSQL accepts (PgBouncer multiplexes the apps' onto few).
    "postgres_max_connections": 200,
    # SSD: random reads cost about what sequential ones do.
    "postgres_random_page_cost": 1.1,
    # SSD: concurrent I/O requests the planner may expect for bitmap heap scans.
    "postgres_effective_io_concurrency": 200,
    # WAL senders and replication slots: room for replicas (fleet step) and pgBackRest.
    "postgres_max_wal_senders": 10,
    # Replication slots allowed (one per replica and per WAL-streaming backup).
    "postgres_max_replication_slots": 10,
    # Most WAL a replication slot may hold back for an absent replica, before the slot is
    # given up (the replica then needs a re-seed) instead of the primary's disk filling.
    "postgres_max_slot_wal_keep_size": "10GB",
    # Operator's word, per run: the replica host to re-seed although it holds a standby
    # of another primary or timeline (--data postgres_reseed=db2). Empty: never.
    "postgres_reseed": "",
    # failover.py refuses to promote a replica that has not received this much of the
    # primary's WAL (bytes; 1 MiB: a few seconds of writes): the commits in it are lost.
    "postgres_failover_max_lag_bytes": 1048576,
    # Operator's word, per run: promote although the replica is behind by more than that,
    # or the primary is out of reach so the loss cannot be measured (failover.py reports it).
    "postgres_failover_force": False,
    # Checkpoint spacing: fewer, smoother checkpoints on a write-light SaaS.
    "postgres_checkpoint_timeout": "15min",
    # WAL kept between checkpoints before one is forced.
    "postgres_max_wal_size": "4GB",
    # WAL recycled rather than removed below this.
    "postgres_min_wal_size": "1GB",
    # Log statements slower than this (ms): the plan's "slow query > 1 s".
    "postgres_log_min_duration_ms": 1000,
    # Read-only role for the metrics exporter (member of pg_monitor).
    "postgres_monitoring_role": "galion_monitoring",
    # Role replicas and backups stream WAL as (REPLICATION, no superuser).
    "postgres_replication_role": "replicator",
    # vm.swappiness on DB hosts: swap only under real pressure (0 would invite the OOM
    # killer on the shared box, where Docker's containers need the same memory).
    "postgres_vm_swappiness": 10,
    # vm.overcommit_memory on DB hosts: 1, as Redis needs for fork-based snapshots; strict
    # accounting (2) would make Docker and Node fail allocations on the shared box.
    "postgres_vm_overcommit_memory": 1,
}

ROLE = Role(
    # The primary (db) and its streaming replicas (db_replica): one role, two modes.
    groups=("db",),
    fleet_groups=("db_replica",),
    peer_groups=("app",),
    order=20,
    knob_prefixes=("postgres_",),
    required_secrets=required_secrets,
    check_inventory=check_inventory,
    checks=(
        (
            "postgres_max_slot_wal_keep_size",
            matches(re.compile(r"^(-1|[1-9]\d*(MB|GB|TB))$")),
            "is not a size PostgreSQL reads",
            'use "10GB" (or -1: no limit)',
        ),
        (
            "postgres_memory_budget_mb",
            lambda v: v is None or int_between(256, 4_000_000)(v),
            "is not a size in MB (>= 256)",
            "use None (from the host's RAM) or e.g. 8192",
        ),
        (
            "postgres_max_connections",
            int_between(20, 10000),
            "is not between 20 and 10000",
            "use 200",
        ),
        (
            "postgres_log_min_duration_ms",
            int_between(-1, 3_600_000),
            "is not milliseconds (-1 = off)",
            "use 1000",
        ),
    ),
)


@deploy("PostgreSQL")
def postgres():
    major = postgresql.version(host.data, host.get_fact(OsRelease))
    replica = topology.is_replica(inventory, host)
    fleet = postgresql.in_fleet(inventory, host)
    refusal = postgresql.refusal(inventory, host, major)
    if refusal:
        # Fails this host only, before anything of the role: the rest still converges.
        server.shell(
            name=f"PostgreSQL on {host.name}: refused",
            commands=[f"echo {shlex.quote(f'{host.name}: {refusal}')} >&2; exit 1"],
        )
        return
    kernel.settings()
    cluster.packages(major)
    cluster.running(major)
    cluster.configured(major)
    restarts.pending_restart(major)
    if fleet:
        replication.failover_scripts()
    # pyinfra runs the hosts' operations in the order of these lines: every operation of
    # the primary (its roles, the replication role among them, and the slots) runs before
    # a replica's seed, also in the first converge of a new fleet.
    if not replica:
        # Roles, databases and grants come to a replica with the WAL.
        objects.roles_and_databases()
        objects.extensions()
        replication.slots()
        if fleet:
            replication.rewind_access(major)
    # Without a step every database host shares, a replica's seed could run before the
    # primary has made the replication role and the slot.
    barrier("PostgreSQL's home (the primary's replication role and slots are ready)")
    if replica:
        replication.replica(major)
    exporter.exporter()
