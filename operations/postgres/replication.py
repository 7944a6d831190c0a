"""Streaming replication: the primary's slots and rewind grants, a replica's seed (or
rejoin, or refusal), and the operator's failover scripts on every host of a fleet."""

import shlex

from pyinfra import host, inventory, logger
from pyinfra.operations import server

from galion import postgresql, secrets, topology
from galion.facts.postgres import PostgresQuery
from galion.facts.replication import PostgresReplicaState
from galion.ops import config_file, postgres_sql, shell_script
from galion.paths import SCRIPTS_DIR
from galion.replication import PASSFILE, passfile_line, replica_action, slot_name, standby_conninfo

# The operator's scripts of a failover, on every database host of a fleet.
FAILOVER_SCRIPTS = ("galion-fence", "galion-promote", "galion-replica-rejoin")


def failover_scripts():
    for name in FAILOVER_SCRIPTS:
        shell_script(postgresql.FILES / name)


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


def rewind_access(major: int):
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
    conninfo = standby_conninfo(topology.primary(inventory), host)
    return conninfo, slot_name(host.name)


def slots():
    """On the primary: a physical slot per replica of the inventory, so the WAL a replica
    still needs is kept while it is away (a slot of a replica taken out of the inventory
    is left alone: drop it by hand, as it keeps WAL until then)."""
    wanted = [slot_name(h.name) for h in topology.database_replicas(inventory)]
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


def replica(major: int):
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
        dest=PASSFILE,
        user="postgres",
        group="postgres",
        mode="600",
        secret=True,
        content=passfile_line(address, port, role, secrets.get("POSTGRES_REPLICATION_PASSWORD")),
    )
    shell_script(postgresql.FILES / "galion-replica-seed")
    conninfo, slot = standby_settings()
    state = host.get_fact(PostgresReplicaState, major=major, primary_conninfo=conninfo)
    action, why = replica_action(state, data.get("postgres_reseed") == host.name)
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
