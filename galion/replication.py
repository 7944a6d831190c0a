"""Streaming replication: the names, the connection string and the decision whether a
replica's data directory must be (re)seeded from the primary. Pure functions: the
postgres role and the failover command use them, tests/unit checks them without a host.
"""

import re

from galion import topology

# The replication role's password for the replica's walreceiver and pg_basebackup: a
# libpq passfile, root-free and private (0600 postgres), never in a config file.
PASSFILE = "/var/lib/postgresql/.galion-replication.pgpass"
# Written by failover.py on the primary it fences (stopped and masked, with its
# PgBouncer): the next converge rejoins that host as a replica with pg_rewind and removes
# it. Outside the data directory, which pg_rewind rewrites.
FENCE_MARKER = "/var/lib/postgresql/galion-fenced"


def slot_name(host_name: str) -> str:
    """The physical replication slot on the primary for this replica."""
    return "galion_" + re.sub(r"[^a-z0-9_]", "_", host_name.lower())


def primary_conninfo(address: str, port: int, user: str, application_name: str) -> str:
    return (
        f"host={address} port={port} user={user} passfile={PASSFILE} "
        f"application_name={slot_name(application_name)} sslmode=prefer"
    )


def standby_conninfo(primary, replica) -> str:
    """The replica's `primary_conninfo` to `primary` (inventory hosts)."""
    return primary_conninfo(
        topology.private_address(primary),
        primary.data.get("postgres_port"),
        replica.data.postgres_replication_role,
        replica.name,
    )


def passfile_line(address: str, port: int, user: str, password: str) -> str:
    """A .pgpass line for the replication connection (and pg_basebackup's)."""

    def esc(value) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(address)}:{port}:*:{esc(user)}:{esc(password)}\n"


# What the replica's state fact prints, one key=value per line (galion/facts/replication.py).
STATE_KEYS = (
    "cluster",  # "online", "down" or "missing"
    "standby",  # "1" when standby.signal is in the data directory
    "user_databases",  # databases other than postgres/template0/template1 (or "")
    "local_sysid",  # pg_controldata's database system identifier
    "primary_sysid",  # IDENTIFY_SYSTEM on the primary ("" when unreachable)
    "receiver",  # pg_stat_wal_receiver.status ("" when none)
    "local_tli",  # the replica's timeline (pg_controldata, latest checkpoint)
    "primary_tli",  # the primary's timeline ("" when unreachable)
    "fenced",  # "1" when failover.py fenced this host (FENCE_MARKER)
)


def replica_action(state: dict, reseed_allowed: bool = False) -> tuple[str, str]:
    """(action, why) for a replica host: "keep", "seed", "rejoin" or "refuse".

    - keep: a standby of this primary, streaming or not (an unreachable primary is never
      a reason to throw data away);
    - seed: no cluster, or a fresh empty one (Debian's package makes one);
    - rejoin: the former primary failover.py fenced: pg_rewind from the new primary
      (pg_rewind itself refuses another system), then a standby (also finishes a rejoin
      that stopped halfway);
    - refuse: a cluster that holds databases and is not a standby, or a standby of another
      primary or of a timeline the primary no longer has (after a PITR or a failover; or
      a typo in the primary's address, or a new empty primary after losing the old one:
      this standby may then hold the only copy of the data). Re-seeding it takes the
      operator's word, `reseed_allowed` (`--data postgres_reseed=<this host>`).
    """
    reseed = "re-seed it on purpose with --data postgres_reseed=<this host>"
    if state.get("cluster") == "missing":
        return "seed", "no cluster yet"
    standby = state.get("standby") == "1"
    if state.get("fenced") == "1":
        return "rejoin", "the former primary, fenced by failover.py: pg_rewind to the new one"
    if not standby:
        if state.get("user_databases") not in ("0",):
            return (
                "refuse",
                "holds databases and is not a replica: it is not wiped (a former primary "
                "that failover.py did not fence, as it was out of reach: it may hold writes "
                "the new primary lacks; run failover.py again to fence it, and the next "
                "converge rejoins it with pg_rewind; else move its data away by hand)",
            )
        return "seed", "a fresh, empty cluster"
    primary = state.get("primary_sysid")
    if primary and state.get("local_sysid") and primary != state.get("local_sysid"):
        why = "a replica of another primary (system identifier differs)"
        return ("seed", why + ": re-seeded") if reseed_allowed else ("refuse", f"{why}: {reseed}")
    if (
        state.get("receiver") != "streaming"
        and state.get("primary_tli")
        and state.get("local_tli")
        and state.get("primary_tli") != state.get("local_tli")
    ):
        why = (
            f"not streaming, on timeline {state.get('local_tli')} while the primary is on "
            f"{state.get('primary_tli')} (a PITR or failover on the primary)"
        )
        return ("seed", why + ": re-seeded") if reseed_allowed else ("refuse", f"{why}: {reseed}")
    return "keep", "a standby of this primary"


# What the promotion fact prints on the replica to be promoted (galion/facts/replication.py).
PROMOTION_KEYS = (
    "cluster",  # "online", "down" or "missing"
    "in_recovery",  # "t" for a standby, "f" for a primary ("" when it cannot tell)
    "receive_lsn",  # the last WAL position received from the primary
    "last_receipt",  # when the primary was last heard from (pg_stat_wal_receiver)
    "upstream_lsn",  # the primary's current WAL position ("" when out of reach)
    "unreceived_bytes",  # WAL the primary has and this replica has not received
)


def promote_action(state: dict, max_lag_bytes: int, force: bool = False) -> tuple[str, str]:
    """(action, report) for the replica failover.py is to promote: "promote", "done"
    (already a primary: a re-run) or "refuse". The report says what would be lost: WAL
    the primary has and the replica has not received (WAL received but not yet replayed
    is replayed before the promotion ends, so it is not lost)."""
    if state.get("cluster") != "online":
        return "refuse", "its PostgreSQL does not run: start it, or choose another replica"
    if state.get("in_recovery") == "f":
        return "done", "already a primary (promoted by an earlier run)"
    if state.get("in_recovery") != "t":
        return "refuse", "cannot tell whether it is a standby: nothing changed"
    received = state.get("receive_lsn") or "nothing"
    if not state.get("upstream_lsn"):
        loss = (
            f"the primary is out of reach, so the loss cannot be measured: whatever it "
            f"committed after WAL position {received} (last heard from "
            f"{state.get('last_receipt') or 'never'}) is lost"
        )
        if force:
            return "promote", f"forced: {loss}"
        return "refuse", f"{loss}; promote anyway with --data postgres_failover_force=true"
    behind = int(state.get("unreceived_bytes") or 0)
    loss = (
        f"{behind} bytes of WAL behind the primary (at {state['upstream_lsn']}, "
        f"received up to {received})"
    )
    if behind > max_lag_bytes:
        if force:
            return "promote", f"forced: {loss}: the commits in them are lost"
        return (
            "refuse",
            f"{loss}, more than postgres_failover_max_lag_bytes ({max_lag_bytes}): wait "
            "for it to catch up, or promote anyway with --data postgres_failover_force=true",
        )
    return "promote", f"{loss}; the primary is stopped first and streams the rest"
