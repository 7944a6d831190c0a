"""PostgreSQL tuned for its host, the apps' databases and roles, pg_hba, and PgBouncer."""

import re
import shlex
import urllib.parse
from pathlib import Path

from pyinfra import host, inventory, logger
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import exporters, postgresql, replication, scram, secrets, topology
from galion.facts import (
    ConfigSettings,
    MemoryTotalMb,
    PostgresClusters,
    PostgresDatabases,
    PostgresQuery,
    PostgresReplicaState,
    PostgresRoles,
    parse_settings,
)
from galion.ops import SCRIPTS_DIR, config_file, postgres_sql, render, shell_script, sysctl_values
from galion.postgresql import CLUSTER
from galion.preflight import Problem, in_group, int_between, matches, needs_group
from galion.role import Role

FILES = Path(__file__).resolve().parent.parent / "files" / "postgres"

KNOBS = {
    # --- PostgreSQL ---
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
    # --- PgBouncer ---
    # Client connections PgBouncer accepts in all.
    "pgbouncer_max_client_conn": 1000,
    # Server connections per database and user (transaction pooling).
    "pgbouncer_default_pool_size": 25,
    # Extra server connections a busy pool may borrow for a moment.
    "pgbouncer_reserve_pool_size": 5,
    # Role PgBouncer logs in as to look up client passwords (auth_query).
    "pgbouncer_auth_user": "pgbouncer_auth",
    # Role the exporter reads SHOW STATS with (PgBouncer admin console, stats only).
    "pgbouncer_stats_user": "pgbouncer_stats",
}


def required_secrets(data) -> list[str]:
    needed = [db["password_secret"] for db in data.get("postgres_databases") or []]
    return needed + [
        "POSTGRES_MONITORING_PASSWORD",
        "POSTGRES_REPLICATION_PASSWORD",
        "PGBOUNCER_AUTH_PASSWORD",
        "PGBOUNCER_STATS_PASSWORD",
    ]


def _check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    """One primary; replicas only beside a primary, never on it."""
    problems = []
    primaries = in_group(hosts, "db")
    for name, groups in sorted(hosts.items()):
        if {"db", "db_replica"} <= groups:
            problems.append(
                Problem(
                    name,
                    "groups",
                    "is in both db and db_replica",
                    "a host is the primary or a replica, not both",
                )
            )
    if len(primaries) > 1:
        problems.append(
            Problem(
                ",".join(primaries),
                "group db",
                "has more than one primary",
                "keep one host in db and put the others in db_replica",
            )
        )
    problems += needs_group(
        hosts, "db_replica", "db", "has replicas but no primary", "put the primary in group db"
    )
    return problems


ROLE = Role(
    # The primary (db) and its streaming replicas (db_replica): one role, two modes.
    groups=("db",),
    fleet_groups=("db_replica",),
    peer_groups=("app",),
    order=20,
    knob_prefixes=("postgres_", "pgbouncer_"),
    required_secrets=required_secrets,
    check_inventory=_check_inventory,
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
        (
            "pgbouncer_max_client_conn",
            int_between(10, 100000),
            "is not between 10 and 100000",
            "use 1000",
        ),
        (
            "pgbouncer_default_pool_size",
            int_between(1, 1000),
            "is not between 1 and 1000",
            "use 25",
        ),
    ),
)


def stable_ram_mb(mem_total_mb: int) -> int:
    """MemTotal rounded to whole GiB: kernel updates, crash-kernel reservations and
    firmware move MemTotal by some MB, which must not move the tuning (and restart)."""
    return max(1, round(mem_total_mb / 1024)) * 1024


def memory_budget_mb(data, ram_mb: int, groups) -> int:
    if data.get("postgres_memory_budget_mb"):
        return int(data.get("postgres_memory_budget_mb"))
    return ram_mb // 2 if "app" in groups else ram_mb * 3 // 4


def tuning(
    data, budget_mb: int, listen: list[str], major: int, standby: tuple[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(setting, value, why) for conf.d; sizes follow the usual PGTune proportions.
    `standby`: (primary_conninfo, slot) on a replica."""
    max_connections = int(data.get("postgres_max_connections"))
    shared_buffers = budget_mb // 4
    work_mem = max(4, (budget_mb - shared_buffers) // (max_connections * 3))
    maintenance = min(2048, max(64, budget_mb // 16))
    return [
        (
            "listen_addresses",
            f"'{','.join(listen)}'",
            "localhost, or the private address too when other hosts connect",
        ),
        ("port", str(data.get("postgres_port")), "TCP port"),
        (
            "max_connections",
            str(max_connections),
            "PgBouncer in front keeps the real number far lower",
        ),
        ("password_encryption", "'scram-sha-256'", "no md5 verifiers"),
        ("shared_buffers", f"{shared_buffers}MB", f"1/4 of the {budget_mb} MB budget"),
        (
            "effective_cache_size",
            f"{budget_mb * 3 // 4}MB",
            "3/4 of the budget: page cache the planner may count on",
        ),
        ("work_mem", f"{work_mem}MB", "(budget - shared_buffers) / (3 x max_connections)"),
        (
            "maintenance_work_mem",
            f"{maintenance}MB",
            "budget / 16 (64 MB .. 2 GB): VACUUM, CREATE INDEX",
        ),
        ("huge_pages", "try", "use huge pages where the kernel offers them"),
        ("random_page_cost", str(data.get("postgres_random_page_cost")), "SSD"),
        ("effective_io_concurrency", str(data.get("postgres_effective_io_concurrency")), "SSD"),
        ("wal_level", "replica", "streaming replicas and WAL archiving (PITR)"),
        ("max_wal_senders", str(data.get("postgres_max_wal_senders")), "replicas + backup streams"),
        (
            "max_replication_slots",
            str(data.get("postgres_max_replication_slots")),
            "one per replica",
        ),
        (
            "max_slot_wal_keep_size",
            str(data.get("postgres_max_slot_wal_keep_size")),
            "WAL an absent replica's slot may hold: the disk never fills for it",
        ),
        ("wal_compression", "lz4" if major >= 15 else "on", "smaller WAL for archive and replicas"),
        ("checkpoint_timeout", data.get("postgres_checkpoint_timeout"), "spacing of checkpoints"),
        ("checkpoint_completion_target", "0.9", "spread checkpoint I/O"),
        ("max_wal_size", data.get("postgres_max_wal_size"), "WAL between forced checkpoints"),
        ("min_wal_size", data.get("postgres_min_wal_size"), "WAL recycled, not removed"),
        ("shared_preload_libraries", "'pg_stat_statements'", "per-query statistics"),
        ("pg_stat_statements.track", "all", "including statements inside functions"),
        ("track_io_timing", "on", "I/O time in EXPLAIN and pg_stat_statements"),
        (
            "log_min_duration_statement",
            str(data.get("postgres_log_min_duration_ms")),
            "slow queries, ms",
        ),
        ("log_checkpoints", "on", "checkpoint timings in the log"),
        ("log_lock_waits", "on", "waits longer than deadlock_timeout"),
        ("log_temp_files", "0", "every spill to disk: work_mem too small?"),
        ("log_connections", "off", "PgBouncer would flood the log"),
        (
            "wal_log_hints",
            "on",
            "a demoted primary can rejoin with pg_rewind (a restart on an existing box)",
        ),
    ] + (
        [
            ("primary_conninfo", f"'{standby[0]}'", "the primary (password in the passfile)"),
            ("primary_slot_name", f"'{standby[1]}'", "its slot keeps the WAL this replica needs"),
            ("hot_standby", "on", "read-only queries on the replica"),
            ("hot_standby_feedback", "on", "no query on the replica cancelled by VACUUM"),
        ]
        if standby
        else []
    )


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


def tuning_validate_command(major: int) -> str:
    """Validate the staged file together with the live main config: postgres -C parses
    everything (units, names, ranges) and exits, also while the server runs."""
    conf_dir = postgresql.config_dir(major)
    return (
        f"t={conf_dir}/galion-validate.tmp; {{ cat {conf_dir}/postgresql.conf; "
        f"echo \"include '{{staged}}'\"; }} > $t && chown postgres $t && "
        f"runuser -u postgres -- /usr/lib/postgresql/{major}/bin/postgres "
        f"-D {postgresql.data_dir(major)} -c config_file=$t -C shared_buffers "
        f">/dev/null; r=$?; rm -f $t; exit $r"
    )


def createdb_command(name: str, owner: str) -> str:
    return f"runuser -u postgres -- createdb -O {owner} {name}"


# PgBouncer reads its file limit from the unit: a new limit needs a restart.
PGBOUNCER_RESTART_NOW = "systemctl restart pgbouncer"
PGBOUNCER_RESTART = ["systemctl daemon-reload", PGBOUNCER_RESTART_NOW]
# Every other change reloads.
PGBOUNCER_RELOAD = "systemctl reload-or-restart pgbouncer"
PGBOUNCER_INI = "/etc/pgbouncer/pgbouncer.ini"
# PgBouncer ignores these on reload: a change to them needs a restart.
PGBOUNCER_RESTART_SETTINGS = ("listen_addr", "listen_port")


def listen_addresses() -> list[str]:
    return ["localhost"] + topology.data_tier_bind_addresses(inventory, host)


def _packages(major: int):
    apt.packages(
        name=f"Install PostgreSQL {major} and PgBouncer",
        packages=[f"postgresql-{major}", f"postgresql-client-{major}", "pgbouncer"],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )


def _cluster(major: int):
    clusters = [
        c
        for c in host.get_fact(PostgresClusters)
        if c["version"] == str(major) and c["name"] == CLUSTER
    ]
    if clusters and postgresql.is_online(clusters[0]["status"]):
        host.noop(f"cluster {major}/{CLUSTER} is online")
        return
    if fenced():
        host.noop(f"cluster {major}/{CLUSTER} stays down: fenced by failover.py")
        return
    server.shell(
        name=f"Cluster {major}/{CLUSTER} exists and runs", commands=cluster_up_commands(major)
    )


def _tuning(major: int):
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
    if fenced():
        # Down until the rejoin starts it, with these files.
        return
    server.shell(
        name="Reload PostgreSQL (restart only if a setting needs it)",
        commands=[postgresql.reload_or_restart_command(major, allow_restart), HBA_LOADED],
        _if=any_changed(conf, hba),
    )


def _role_sql(role: str, options: str) -> str:
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f'THEN CREATE ROLE "{role}" {options}; END IF; END $$;\n'
        f'ALTER ROLE "{role}" {options};\n'
    )


def _login_role(
    role: str,
    options: str,
    secret_key: str,
    roles: dict,
    extra_sql: str = "",
    extra_ok: bool = True,
):
    """Create/alter a role; set its password as a SCRAM verifier made here, only if the
    stored one was not made from the wanted password."""
    password = secrets.get(secret_key)
    have = roles.get(role)
    if (
        have
        and have["login"]
        and not have["superuser"]
        and have["replication"] == (" REPLICATION" in f" {options}")
        and scram.matches(have["verifier"], password)
        and extra_ok
    ):
        host.noop(f"role {role} is as wanted")
        return
    postgres_sql(
        name=f"Role {role} ({secret_key}; verifier only, never the password)",
        sql=_role_sql(role, options)
        + f"ALTER ROLE \"{role}\" PASSWORD '{scram.verifier(password)}';\n"
        + extra_sql,
        secret=True,
    )


def _roles_and_databases():
    roles = host.get_fact(PostgresRoles)
    databases = host.get_fact(PostgresDatabases)
    data = host.data
    for db in data.postgres_databases:
        _login_role(
            db["owner"],
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION",
            db["password_secret"],
            roles,
        )
    monitor = data.postgres_monitoring_role
    in_pg_monitor = host.get_fact(
        PostgresQuery,
        sql=(
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.member "
            "join pg_roles g on g.oid = m.roleid where g.rolname = 'pg_monitor'"
        ),
    )
    _login_role(
        monitor,
        "LOGIN NOSUPERUSER NOREPLICATION",
        "POSTGRES_MONITORING_PASSWORD",
        roles,
        extra_sql=f'GRANT pg_monitor TO "{monitor}";\n',
        extra_ok=[monitor] in in_pg_monitor,
    )
    _login_role(
        data.postgres_replication_role,
        "LOGIN REPLICATION NOSUPERUSER",
        "POSTGRES_REPLICATION_PASSWORD",
        roles,
    )
    _login_role(
        data.pgbouncer_auth_user,
        "LOGIN NOSUPERUSER NOREPLICATION",
        "PGBOUNCER_AUTH_PASSWORD",
        roles,
    )
    for db in data.postgres_databases:
        if databases.get(db["name"]) == db["owner"]:
            host.noop(f"database {db['name']} owned by {db['owner']}")
            continue
        if db["name"] in databases:
            postgres_sql(
                name=f"Database {db['name']} owned by {db['owner']}",
                sql=f'ALTER DATABASE "{db["name"]}" OWNER TO "{db["owner"]}";\n',
            )
        else:
            server.shell(
                name=f"Create database {db['name']} owned by {db['owner']}",
                commands=[createdb_command(db["name"], db["owner"])],
            )


def _extensions():
    rows = host.get_fact(PostgresQuery, sql="select extname from pg_extension")
    if ["pg_stat_statements"] in rows:
        host.noop("pg_stat_statements is installed")
        return
    postgres_sql(
        name="pg_stat_statements view (for the exporter and slow-query reviews)",
        sql="CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n",
    )


AUTH_FUNCTION = """\
CREATE SCHEMA IF NOT EXISTS pgbouncer AUTHORIZATION postgres;
CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE(usename name, passwd text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    -- PgBouncer looks client passwords up here; superusers never log in through it.
    SELECT usename, passwd FROM pg_catalog.pg_shadow
    WHERE usename = p_usename AND NOT usesuper
$$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbouncer TO "{auth_user}";
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO "{auth_user}";
"""


def _pgbouncer_auth_function():
    """The SECURITY DEFINER lookup PgBouncer's auth_query calls, in every app database."""
    auth_user = host.data.pgbouncer_auth_user
    for db in host.data.postgres_databases:
        rows = host.get_fact(
            PostgresQuery,
            database=db["name"],
            sql=(
                "select p.prosecdef, has_function_privilege('"
                + auth_user
                + "', p.oid, 'execute'), "
                "has_function_privilege('public', p.oid, 'execute') "
                "from pg_proc p join pg_namespace n "
                "on n.oid = p.pronamespace where n.nspname = 'pgbouncer' and p.proname = 'get_auth'"
            ),
        )
        if rows == [["t", "t", "f"]]:
            host.noop(f"pgbouncer.get_auth in {db['name']} is in place")
            continue
        postgres_sql(
            name=f"pgbouncer.get_auth() in {db['name']} (SECURITY DEFINER)",
            database=db["name"],
            sql=AUTH_FUNCTION.format(auth_user=auth_user),
        )


def pgbouncer_needs_restart(current: dict, content: str) -> bool:
    """Whether the wanted pgbouncer.ini changes a setting PgBouncer reads only at start."""
    wanted = parse_settings(content.splitlines(), PGBOUNCER_RESTART_SETTINGS)
    have = {k: v for k, v in current.items() if k in PGBOUNCER_RESTART_SETTINGS}
    return bool(have) and have != wanted


def _pgbouncer():
    data = host.data
    content = render(
        "postgres/etc/pgbouncer/pgbouncer.ini.j2",
        databases=data.postgres_databases,
        postgres_port=data.postgres_port,
        listen=["127.0.0.1"] + data_tier_binds(),
        port=data.pgbouncer_port,
        max_client_conn=data.pgbouncer_max_client_conn,
        default_pool_size=data.pgbouncer_default_pool_size,
        reserve_pool_size=data.pgbouncer_reserve_pool_size,
        auth_user=data.pgbouncer_auth_user,
        stats_user=data.pgbouncer_stats_user,
    )
    restart = pgbouncer_needs_restart(
        host.get_fact(ConfigSettings, path=PGBOUNCER_INI, keys=PGBOUNCER_RESTART_SETTINGS), content
    )
    ini = config_file(
        name="PgBouncer: transaction pooling, scram through auth_query",
        dest=PGBOUNCER_INI,
        user="postgres",
        group="postgres",
        mode="640",
        content=content,
    )
    userlist = config_file(
        name="PgBouncer auth file (secret)",
        dest="/etc/pgbouncer/userlist.txt",
        user="postgres",
        group="postgres",
        mode="600",
        secret=True,
        content=render(
            "postgres/etc/pgbouncer/userlist.txt.j2",
            users=[
                (data.pgbouncer_auth_user, secrets.get("PGBOUNCER_AUTH_PASSWORD")),
                (data.pgbouncer_stats_user, secrets.get("PGBOUNCER_STATS_PASSWORD")),
            ],
        ),
    )
    limits = config_file(
        name="PgBouncer may hold max_client_conn sockets",
        dest="/etc/systemd/system/pgbouncer.service.d/galion-limits.conf",
        content=render(
            "postgres/etc/systemd/pgbouncer-limits.conf.j2",
            nofile=int(data.pgbouncer_max_client_conn) * 2 + 1024,
        ),
    )
    server.shell(
        name="Restart PgBouncer for its new file limit",
        commands=PGBOUNCER_RESTART,
        _if=limits.did_change,
    )
    server.shell(
        name=(
            "Restart PgBouncer: its listen address or port changed"
            if restart
            else "Reload PgBouncer if its config changed"
        ),
        commands=[PGBOUNCER_RESTART_NOW if restart else PGBOUNCER_RELOAD],
        _if=any_changed(ini, userlist),
    )
    systemd.service(
        name="PgBouncer enabled and running", service="pgbouncer", running=True, enabled=True
    )


# Hosts failover.py promotes in this run: still standbys when the run is planned.
PROMOTING: set[str] = set()
# The operator's scripts of a failover, on every database host of a fleet.
FAILOVER_SCRIPTS = ("galion-fence", "galion-promote", "galion-replica-rejoin")


def in_fleet() -> bool:
    """Whether this database host has database peers (a primary with replicas)."""
    return bool(topology.database_peers(inventory, host))


def fenced() -> bool:
    """Whether failover.py fenced this host (its marker; only asked in a fleet)."""
    return in_fleet() and bool(host.get_fact(File, path=replication.FENCE_MARKER))


def _primary_refusals(major: int) -> str | None:
    """Why this `db` host must not be converged as the primary, or None."""
    if not in_fleet():
        return None
    if fenced():
        return (
            "was fenced by failover.py: it is no longer the primary (move it to db_replica "
            "in the inventory: the next converge rejoins it as a replica)"
        )
    standby = host.get_fact(File, path=f"{postgresql.data_dir(major)}/standby.signal")
    if standby and host.name not in PROMOTING:
        return (
            "is a standby: a replica becomes the primary through failover.py (which fences "
            "the old one first), not through a converge"
        )
    return None


def _failover_scripts():
    for name in FAILOVER_SCRIPTS:
        shell_script(FILES / name)


def rewind_functions(major: int) -> tuple[str, ...]:
    """What the replication role runs on the new primary when a former primary rejoins:
    pg_rewind's four file functions (no superuser needed), and a WAL message that lets the
    rewound standby become consistent while the primary is idle."""
    message_args = "boolean, text, text, boolean" if major >= 17 else "boolean, text, text"
    return (
        "pg_catalog.pg_ls_dir(text, boolean, boolean)",
        "pg_catalog.pg_stat_file(text, boolean)",
        "pg_catalog.pg_read_binary_file(text)",
        "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
        f"pg_catalog.pg_logical_emit_message({message_args})",
    )


def _rewind_access(major: int):
    """Granted on the primary; the replicas get it with the WAL."""
    role = host.data.postgres_replication_role
    functions = rewind_functions(major)
    granted = host.get_fact(
        PostgresQuery,
        sql=" union all ".join(
            f"select has_function_privilege('{role}', '{f}', 'execute')" for f in functions
        ),
    )
    if granted and all(row == ["t"] for row in granted):
        host.noop(f"{role} may run pg_rewind's functions")
        return
    postgres_sql(
        name=f"{role} may run pg_rewind's functions (a former primary rejoins)",
        sql="".join(f'GRANT EXECUTE ON FUNCTION {f} TO "{role}";\n' for f in functions),
    )


def standby_settings() -> tuple[str, str] | None:
    """(primary_conninfo, slot) on a replica, else None."""
    if not topology.is_replica(inventory, host):
        return None
    conninfo = replication.standby_conninfo(topology.primary(inventory), host)
    return conninfo, replication.slot_name(host.name)


def _replication_slots():
    """On the primary: a physical slot per replica of the inventory, so the WAL a replica
    still needs is kept while it is away (a slot of a replica taken out of the inventory
    is left alone: drop it by hand, as it keeps WAL until then)."""
    wanted = [replication.slot_name(h.name) for h in topology.database_replicas(inventory)]
    if not wanted:
        return
    have = {
        row[0]
        for row in host.get_fact(
            PostgresQuery,
            sql="select slot_name from pg_replication_slots where slot_type = 'physical'",
        )
    }
    missing = [s for s in wanted if s not in have]
    if not missing:
        host.noop(f"replication slots {', '.join(wanted)} exist")
        return
    postgres_sql(
        name=f"Replication slots {', '.join(missing)}",
        sql="".join(
            f"SELECT pg_create_physical_replication_slot('{s}', true) WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_replication_slots WHERE slot_name = '{s}');\n"
            for s in missing
        ),
    )


def _replica(major: int):
    """A streaming replica: the replication password in a private passfile, then a base
    backup from the primary when the data directory is not yet (or no longer) a standby
    of it. A healthy standby is never re-cloned."""
    data = host.data
    primary = topology.primary(inventory)
    address = topology.private_address(primary)
    port = primary.data.get("postgres_port")
    role = data.postgres_replication_role
    config_file(
        name="Replication passfile (secret)",
        dest=replication.PASSFILE,
        user="postgres",
        group="postgres",
        mode="600",
        secret=True,
        content=replication.passfile_line(
            address, port, role, secrets.get("POSTGRES_REPLICATION_PASSWORD")
        ),
    )
    shell_script(FILES / "galion-replica-seed")
    conninfo, slot = standby_settings()
    state = host.get_fact(PostgresReplicaState, major=major, primary_conninfo=conninfo)
    action, why = replication.replica_action(state, data.get("postgres_reseed") == host.name)
    if action == "refuse":
        # Fails this host only (at its turn): the rest of the fleet still converges.
        server.shell(
            name=f"Replica {host.name}: refused",
            commands=[
                f"echo {shlex.quote(f'{host.name}: the PostgreSQL cluster {why}')} >&2; exit 1"
            ],
        )
        return
    if action == "keep":
        host.noop(f"{host.name} is {why}")
        return
    if action == "rejoin":
        host.log(f"replica {host.name}: {why} ({primary.name})", logger.warning)
        server.shell(
            name=f"Rejoin the former primary as a replica of {primary.name} (pg_rewind)",
            commands=[f"{SCRIPTS_DIR}/galion-replica-rejoin {major} {address} {port} {role}"],
        )
        return
    host.log(f"replica {host.name}: {why}: seeding from {primary.name}", logger.warning)
    server.shell(
        name=f"Seed the replica from {primary.name} ({why})",
        commands=[f"{SCRIPTS_DIR}/galion-replica-seed {major} {address} {port} {role} {slot}"],
    )


def _pending_restart(major: int):
    """Settings an earlier run changed but that wait for a restart (it was not allowed)."""
    rows = host.get_fact(PostgresQuery, sql="select name from pg_settings where pending_restart")
    if not rows:
        host.noop("no setting waits for a restart")
        return
    names = ", ".join(row[0] for row in rows)
    if postgresql.restart_allowed(host.data):
        server.shell(
            name=f"Restart PostgreSQL for settings that wait for it ({names})",
            commands=[f"systemctl restart {postgresql.unit(major)}"],
        )
    else:
        host.log(
            f"PostgreSQL restart pending for {names}: converge with --data "
            "postgres_restart_allowed=true in a maintenance window",
            logger.warning,
        )


def os_settings(data, binds_private_address: bool) -> dict:
    """Kernel settings of a database host."""
    values = {
        "vm.swappiness": data.get("postgres_vm_swappiness"),
        "vm.overcommit_memory": data.get("postgres_vm_overcommit_memory"),
    }
    if binds_private_address:
        # After a reboot the private interface (or Docker's bridge) may come up after
        # PostgreSQL, PgBouncer and Redis: let them bind its address anyway instead of
        # failing to start.
        values["net.ipv4.ip_nonlocal_bind"] = 1
        values["net.ipv6.ip_nonlocal_bind"] = 1
    return values


def data_tier_binds() -> list[str]:
    """PgBouncer's and Redis' addresses beyond loopback: the private address when other
    hosts connect, the Docker bridge's when this host's app containers do."""
    gateway = topology.local_data_tier_for_containers(inventory, host)
    return topology.data_tier_bind_addresses(inventory, host) + ([gateway] if gateway else [])


def _os_settings():
    values = os_settings(host.data, bool(data_tier_binds()))
    config_file(
        name="Kernel memory settings for a database host",
        dest="/etc/sysctl.d/91-galion-database.conf",
        content=render("shared/sysctl.conf.j2", values=values),
    )
    sysctl_values(name="Database host memory settings applied where allowed", values=values)


def _exporter():
    """postgres_exporter, logged in as the monitoring role (pg_monitor) over loopback."""
    data = host.data
    password = urllib.parse.quote(secrets.get("POSTGRES_MONITORING_PASSWORD"), safe="")
    listen = topology.exporter_bind_address(inventory, host)
    exporters.exporter(
        "PostgreSQL exporter",
        "prometheus-postgres-exporter",
        [f"--web.listen-address={listen}:{data.postgres_exporter_port}"],
        environment={
            "DATA_SOURCE_NAME": f"postgresql://{data.postgres_monitoring_role}:{password}"
            f"@127.0.0.1:{data.postgres_port}/postgres?sslmode=disable"
        },
        secret=True,
    )


def _pgbouncer_metrics():
    """PgBouncer's pools (clients active and waiting, servers, longest wait) as textfile
    metrics, from `SHOW POOLS` as the stats user every 15 s. Not Debian's exporter:
    Debian 12's crashes on its own PgBouncer 1.18 (it asks for the renamed
    total_requests), and Debian 13's is another program with other metric names."""
    data = host.data
    config_file(
        name="PgBouncer metrics: the stats user's password (secret)",
        dest="/etc/galion/pgbouncer-metrics.env",
        mode="600",
        secret=True,
        content="# Managed by galion-infra (operations/postgres.py).\n"
        f"PGPASSWORD={secrets.get('PGBOUNCER_STATS_PASSWORD')}\n",
    )
    exporters.textfile_collector(
        "galion-pgbouncer-metrics",
        FILES,
        service=render(
            "postgres/etc/systemd/system/galion-pgbouncer-metrics.service.j2",
            textfile_dir=exporters.TEXTFILE_DIR,
            port=data.pgbouncer_port,
            stats_user=data.pgbouncer_stats_user,
        ),
    )


@deploy("PostgreSQL and PgBouncer")
def postgres():
    major = postgresql.version(host.data, host.get_fact(OsRelease))
    replica = topology.is_replica(inventory, host)
    refusal = None if replica else _primary_refusals(major)
    if refusal:
        # Fails this host only, before anything of the role: the rest still converges.
        server.shell(
            name=f"PostgreSQL on {host.name}: refused",
            commands=[f"echo {shlex.quote(f'{host.name}: {refusal}')} >&2; exit 1"],
        )
        return
    _os_settings()
    _packages(major)
    _cluster(major)
    _tuning(major)
    _pending_restart(major)
    if in_fleet():
        _failover_scripts()
    # pyinfra runs the hosts' operations in the order of these lines: every operation of
    # the primary (its roles, the replication role among them, and the slots) runs before
    # a replica's seed, also in the first converge of a new fleet.
    if not replica:
        # Roles, databases and functions come to a replica with the WAL.
        _roles_and_databases()
        _extensions()
        _pgbouncer_auth_function()
        _replication_slots()
        if in_fleet():
            _rewind_access(major)
    # One operation from this line on every database host: pyinfra orders each host's
    # operations on its own, so without a step they share, a replica's seed could run
    # before the primary has made the replication role and the slot.
    files.directory(
        name="PostgreSQL's home (the primary's replication role and slots are ready)",
        path="/var/lib/postgresql",
        present=True,
    )
    if replica:
        _replica(major)
    _pgbouncer()
    _exporter()
    _pgbouncer_metrics()
