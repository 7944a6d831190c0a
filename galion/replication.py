"""Streaming replication: the names, the connection string and the decision whether a
replica's data directory must be (re)seeded from the primary. Pure functions: the
postgres role and the failover command use them, tests/unit checks them without a host.
"""

import re

# The replication role's password for the replica's walreceiver and pg_basebackup: a
# libpq passfile, root-free and private (0600 postgres), never in a config file.
PASSFILE = "/var/lib/postgresql/.galion-replication.pgpass"


def slot_name(host_name: str) -> str:
    """The physical replication slot on the primary for this replica."""
    return "galion_" + re.sub(r"[^a-z0-9_]", "_", host_name.lower())


def primary_conninfo(address: str, port: int, user: str, application_name: str) -> str:
    return (
        f"host={address} port={port} user={user} passfile={PASSFILE} "
        f"application_name={slot_name(application_name)} sslmode=prefer"
    )


def passfile_line(address: str, port: int, user: str, password: str) -> str:
    """A .pgpass line for the replication connection (and pg_basebackup's)."""

    def esc(value) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(address)}:{port}:*:{esc(user)}:{esc(password)}\n"


# What the replica's state fact prints, one key=value per line (see facts.PostgresReplicaState).
STATE_KEYS = (
    "cluster",  # "online", "down" or "missing"
    "standby",  # "1" when standby.signal is in the data directory
    "user_databases",  # databases other than postgres/template0/template1 (or "")
    "local_sysid",  # pg_controldata's database system identifier
    "primary_sysid",  # IDENTIFY_SYSTEM on the primary ("" when unreachable)
    "receiver",  # pg_stat_wal_receiver.status ("" when none)
    "local_tli",  # the replica's timeline (pg_controldata, latest checkpoint)
    "primary_tli",  # the primary's timeline ("" when unreachable)
)


def replica_action(state: dict, reseed_allowed: bool = False) -> tuple[str, str]:
    """(action, why) for a replica host: "keep", "seed" or "refuse".

    - keep: a standby of this primary, streaming or not (an unreachable primary is never
      a reason to throw data away);
    - seed: no cluster, or a fresh empty one (Debian's package makes one);
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
    if not standby:
        if state.get("user_databases") not in ("0",):
            return (
                "refuse",
                "holds databases and is not a replica: it is not wiped (a former "
                "primary: rejoin it with pg_rewind; else move its data away by hand)",
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
