"""The cluster itself: installed, created and running, then configured (the tuning file
and pg_hba, validated, then reloaded; restarted only when the run may)."""

from pyinfra import host, inventory
from pyinfra.operations import apt, server
from pyinfra.operations.util import any_changed

from galion import postgresql, topology
from galion.facts.postgres import PostgresClusters
from galion.facts.system import MemoryTotalMb
from galion.ops import config_file, render
from galion.postgresql import CLUSTER

from .replication import standby_settings
from .tuning import memory_budget_mb, stable_ram_mb, tuning, tuning_validate_command

# A broken pg_hba.conf is not loaded: fail the run loudly instead.
HBA_LOADED = (
    "test \"$(runuser -u postgres -- psql -X -Atc 'select count(*) from "
    "pg_hba_file_rules where error is not null')\" = 0"
)


def cluster_up_commands(major: int) -> list[str]:
    """Create the cluster if it is missing, start it, and start it at boot."""
    return [
        f"pg_lsclusters --no-header | grep -q '^{major} *{CLUSTER} ' "
        f"|| pg_createcluster {major} {CLUSTER}",
        f"pg_ctlcluster {major} {CLUSTER} start || pg_ctlcluster {major} {CLUSTER} status",
        f"systemctl enable {postgresql.unit(major)}",
    ]


def listen_addresses() -> list[str]:
    return ["localhost"] + topology.data_tier_bind_addresses(inventory, host)


# systemd cannot tell how the postmaster ended (pg_ctl forked it: systemd only reads its
# PID file), so the unit's result is that of its ExecStop, Debian's `pg_ctlcluster stop`,
# which fails ("Cluster is not running") after a crash and after a clean `pg_ctl stop`
# (galion-fence's) alike: the restart policy would start a fenced cluster again. The
# PID file tells them apart: PostgreSQL removes it when it shuts down, a SIGKILL leaves
# it. So the stop fails, and the unit restarts, only when the PID file is left.
STOP_AFTER_EXIT = (
    "ExecStop=",
    "ExecStop=/bin/sh -c 'pg_ctlcluster --skip-systemctl-redirect -m fast %i stop "
    "|| ! test -e /run/postgresql/%i.pid'",
)


def packages(major: int):
    # PgBouncer's package too: one apt run (operations/pgbouncer.py configures it).
    apt.packages(
        name=f"Install PostgreSQL {major} and PgBouncer",
        packages=[f"postgresql-{major}", f"postgresql-client-{major}", "pgbouncer"],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )


def running(major: int):
    clusters = [
        c
        for c in host.get_fact(PostgresClusters)
        if c["version"] == str(major) and c["name"] == CLUSTER
    ]
    if clusters and postgresql.is_online(clusters[0]["status"]):
        host.noop(f"cluster {major}/{CLUSTER} is online")
        return
    if postgresql.fenced(inventory, host):
        host.noop(f"cluster {major}/{CLUSTER} stays down: fenced by failover.py")
        return
    server.shell(
        name=f"Cluster {major}/{CLUSTER} exists and runs", commands=cluster_up_commands(major)
    )


def configured(major: int):
    ram = stable_ram_mb(host.get_fact(MemoryTotalMb))
    budget = memory_budget_mb(host.data, ram, host.groups)
    conf_dir = postgresql.config_dir(major)
    tuning_path = f"{conf_dir}/conf.d/90-galion.conf"
    # A cluster this run creates or starts may restart (nothing is served yet); one that
    # serves already only when the run allows it.
    serving = postgresql.serving(host.get_fact(PostgresClusters), major)
    allow_restart = postgresql.restart_allowed(host.data) or not serving
    conf = config_file(
        name="PostgreSQL tuning (validated with postgres -C)",
        dest=tuning_path,
        user="postgres",
        group="postgres",
        content=render(
            "postgres/etc/postgresql/90-galion.conf.j2",
            settings=tuning(host.data, budget, listen_addresses(), major, standby_settings()),
            ram_mb=ram,
            budget_mb=budget,
        ),
        validate=tuning_validate_command(major),
    )
    hba = config_file(
        name="pg_hba: peer for postgres, scram-sha-256 from localhost and app hosts",
        dest=f"{conf_dir}/pg_hba.conf",
        user="postgres",
        group="postgres",
        mode="640",
        content=render(
            "postgres/etc/postgresql/pg_hba.conf.j2",
            clients=[
                topology.host_cidr(topology.private_address(h))
                for h in topology.data_tier_clients(inventory, host)
            ],
            replication_role=host.data.postgres_replication_role,
            replicas=[
                topology.host_cidr(topology.private_address(h))
                for h in topology.database_peers(inventory, host)
            ],
        ),
    )
    if postgresql.fenced(inventory, host):
        # Down until the rejoin starts it, with these files.
        return
    server.shell(
        name="Reload PostgreSQL (restart only if a setting needs it)",
        commands=[postgresql.reload_or_restart_command(major, allow_restart), HBA_LOADED],
        _if=any_changed(conf, hba),
    )
