"""Facts of a PostgreSQL cluster's place in replication: what a replica's data directory
is, its system identifier, what a replica to promote knows of its primary."""

import shlex
from typing import ClassVar

from ._base import _Fact, _first_line

# Shared by the facts that read a cluster's data directory and pg_controldata.
_PSQL = "runuser -u postgres -- psql -X -At"
_SYSID = "sed -n 's/^Database system identifier: *//p'"


def _data_dir(major) -> str:
    return f"/var/lib/postgresql/{major}/main"


def _controldata(major) -> str:
    return f"/usr/lib/postgresql/{major}/bin/pg_controldata {_data_dir(major)} 2>/dev/null"


def _cluster_lines(major) -> list[str]:
    """`cluster=missing` (and stop), else `cluster=online` or `cluster=down`."""
    online = f"pg_lsclusters --no-header | awk '$1 == {major} && $2 == \"main\" {{print $4}}'"
    return [
        f"if [ ! -f {_data_dir(major)}/PG_VERSION ]; then echo cluster=missing; exit 0; fi",
        f'echo "cluster=$({online} | grep -q "^online" && echo online || echo down)"',
    ]


class PostgresReplicaState(_Fact):
    """What a replica host's data directory is, for `replication.replica_action`:
    `{key: value}` over `replication.STATE_KEYS` (the primary's side read with the
    replication role's passfile; empty when unreachable)."""

    default_value: ClassVar[dict] = {"cluster": "missing"}

    def command(self, major, primary_conninfo):
        from galion import replication

        data = _data_dir(major)
        control = _controldata(major)
        psql = _PSQL
        user_dbs = (
            "select count(*) from pg_database "
            "where datname not in ('postgres', 'template0', 'template1')"
        )
        primary = shlex.quote(
            f"{primary_conninfo} dbname=replication replication=true connect_timeout=5"
        )
        sysid = _SYSID
        # A standby's timeline: its last restartpoint's, or the newer one it has replayed
        # up to (a rewound former primary is on the new timeline before its restartpoint).
        tli = (
            "awk -F': *' '/^Latest checkpoint.s TimeLineID|^Min recovery ending loc.s "
            "timeline/ {if ($2 + 0 > t + 0) t = $2} END {print t}'"
        )
        receiver = "select status from pg_stat_wal_receiver"
        return "; ".join(
            [
                *_cluster_lines(major),
                f"[ -f {data}/standby.signal ] && echo standby=1 || echo standby=0",
                f'echo "user_databases=$({psql} -c "{user_dbs}" 2>/dev/null)"',
                f'echo "local_sysid=$({control} | {sysid})"',
                f'echo "local_tli=$({control} | {tli})"',
                f'echo "receiver=$({psql} -c "{receiver}" 2>/dev/null)"',
                f"if [ -r {replication.PASSFILE} ]; then "
                f"id=$({psql} -d {primary} -c IDENTIFY_SYSTEM 2>/dev/null)",
                'echo "primary_sysid=$(echo "$id" | cut -d"|" -f1)"',
                'echo "primary_tli=$(echo "$id" | cut -s -d"|" -f2)"; fi',
                f"[ -f {replication.FENCE_MARKER} ] && echo fenced=1 || echo fenced=0",
            ]
        )

    def process(self, output):
        return _key_values(output)


def _key_values(output) -> dict:
    state = {}
    for line in output:
        key, _, value = line.partition("=")
        state[key] = value.strip()
    return state


class PostgresSystemIdentifier(_Fact):
    """The cluster's database system identifier (pg_controldata), "" without a cluster:
    a primary and its replicas share it; a cluster initialised elsewhere does not."""

    default_value: ClassVar[str] = ""

    def command(self, major):
        return f"{_controldata(major)} | {_SYSID}; true"

    def process(self, output):
        return _first_line(output)


class PostgresPromotionState(_Fact):
    """What the replica failover.py is to promote knows of its primary, for
    `replication.promote_action`: `{key: value}` over `replication.PROMOTION_KEYS`. The
    primary is asked (IDENTIFY_SYSTEM) over the replica's own primary_conninfo."""

    default_value: ClassVar[dict] = {"cluster": "missing"}

    def command(self, major):
        psql = _PSQL
        received = "coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
        return "; ".join(
            [
                *_cluster_lines(major),
                f'echo "in_recovery=$({psql} -c "select pg_is_in_recovery()" 2>/dev/null)"',
                f'echo "receive_lsn=$({psql} -c "select {received}" 2>/dev/null)"',
                f'echo "last_receipt=$({psql} -c '
                f'"select last_msg_receipt_time from pg_stat_wal_receiver" 2>/dev/null)"',
                f'up=$({psql} -c "show primary_conninfo" 2>/dev/null)',
                f'[ -n "$up" ] && up=$({psql} -d "$up dbname=replication replication=true '
                'connect_timeout=5" -c IDENTIFY_SYSTEM 2>/dev/null | cut -s -d"|" -f3)',
                'echo "upstream_lsn=$up"',
                f'[ -n "$up" ] && echo "unreceived_bytes=$({psql} -c "select greatest(0, '
                f"pg_wal_lsn_diff('$up', {received}))::bigint\" 2>/dev/null)\"",
                "true",
            ]
        )

    def process(self, output):
        return _key_values(output)
