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
from galion.ops import barrier, restarts_after_crash
from galion.role import Knob, Role
from galion.validators import int_between, matches

from . import cluster, exporter, kernel, objects, replication, restarts
from .checks import check_inventory, required_secrets

KNOBS = {
    # A 16 GB box that also runs the apps: 8 GB, so shared_buffers 2 GB.
    "postgres_memory_budget_mb": Knob(
        None,
        "Memory PostgreSQL may plan with, in MB; None: half the RAM on a host that also runs "
        "the apps, 3/4 on a DB-only host.",
        check=lambda v: v is None or int_between(256, 4_000_000)(v),
        problem="is not a size in MB (>= 256)",
        fix="use {default} (from the host's RAM) or e.g. 8192",
    ),
    "postgres_max_connections": Knob(
        200,
        "Client connections PostgreSQL accepts (PgBouncer multiplexes the apps' onto few).",
        check=int_between(20, 10000),
    ),
    "postgres_random_page_cost": Knob(1.1, "SSD: random reads cost about what sequential ones do."),
    "postgres_effective_io_concurrency": Knob(
        200, "SSD: concurrent I/O requests the planner may expect for bitmap heap scans."
    ),
    "postgres_max_wal_senders": Knob(
        10, "WAL senders: room for replicas (fleet step) and pgBackRest."
    ),
    "postgres_max_replication_slots": Knob(
        10, "Replication slots allowed (one per replica and per WAL-streaming backup)."
    ),
    # The slot is given up (the replica then needs a re-seed) instead of the primary's
    # disk filling.
    "postgres_max_slot_wal_keep_size": Knob(
        "10GB",
        "Most WAL a replication slot may hold back for an absent replica.",
        check=matches(re.compile(r"^(-1|[1-9]\d*(MB|GB|TB))$")),
        problem="is not a size PostgreSQL reads",
        fix="use {default} (or -1: no limit)",
    ),
    "postgres_reseed": Knob(
        "",
        "Operator's word, per run (--data postgres_reseed=db2): the replica host to re-seed "
        "although it holds a standby of another primary or timeline; empty: never.",
    ),
    # 1 MiB: a few seconds of writes; the commits in it are lost.
    "postgres_failover_max_lag_bytes": Knob(
        1048576,
        "failover.py refuses to promote a replica that has not received this much of the "
        "primary's WAL (bytes).",
    ),
    # failover.py reports the loss it cannot measure.
    "postgres_failover_force": Knob(
        False,
        "Operator's word, per run: promote although the replica is behind by more than "
        "postgres_failover_max_lag_bytes, or the primary is out of reach.",
    ),
    "postgres_checkpoint_timeout": Knob(
        "15min", "Checkpoint spacing: fewer, smoother checkpoints on a write-light SaaS."
    ),
    "postgres_max_wal_size": Knob("4GB", "WAL kept between checkpoints before one is forced."),
    "postgres_min_wal_size": Knob("1GB", "WAL recycled rather than removed below this."),
    "postgres_log_min_duration_ms": Knob(
        1000,
        "Log statements slower than this (ms): the slow queries worth a look; -1 = off.",
        check=int_between(-1, 3_600_000),
        problem="is not milliseconds (-1 = off)",
    ),
    "postgres_monitoring_role": Knob(
        "galion_monitoring", "Read-only role for the metrics exporter (member of pg_monitor)."
    ),
    "postgres_replication_role": Knob(
        "replicator", "Role replicas and backups stream WAL as (REPLICATION, no superuser)."
    ),
    # 0 would invite the OOM killer on the shared box, where Docker's containers need the
    # same memory.
    "postgres_vm_swappiness": Knob(10, "vm.swappiness on DB hosts: swap only under real pressure."),
    # Strict accounting (2) would make Docker and Node fail allocations on the shared box.
    "postgres_vm_overcommit_memory": Knob(
        1, "vm.overcommit_memory on DB hosts: 1, as Redis needs for fork-based snapshots."
    ),
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
    # Every cluster of the template unit: PostgreSQL's crash recovery, then it serves.
    restarts_after_crash("PostgreSQL", "postgresql@.service", cluster.STOP_AFTER_EXIT)
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
