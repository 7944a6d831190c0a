"""galion.replication: when a replica is seeded, kept or refused; its connection details."""

import pytest

from galion import replication

SYSID = "7312345678901234567"
STREAMING = {
    "cluster": "online",
    "standby": "1",
    "user_databases": "2",
    "local_sysid": SYSID,
    "primary_sysid": SYSID,
    "receiver": "streaming",
    "local_tli": "1",
    "primary_tli": "1",
}


def test_a_streaming_standby_of_this_primary_is_kept():
    assert replication.replica_action(STREAMING)[0] == "keep"


def test_an_unreachable_primary_never_wipes_a_standby():
    state = {**STREAMING, "receiver": "", "primary_sysid": "", "primary_tli": ""}
    assert replication.replica_action(state)[0] == "keep"


@pytest.mark.parametrize(
    "state",
    [
        {"cluster": "missing"},
        {**STREAMING, "standby": "0", "user_databases": "0", "receiver": ""},
    ],
    ids=["no cluster", "fresh empty cluster"],
)
def test_a_missing_or_empty_cluster_is_seeded(state):
    assert replication.replica_action(state)[0] == "seed"


def test_a_standby_of_another_primary_is_reseeded_only_on_the_operator_s_word():
    # A typo in the primary's address, or a new empty primary: this standby may hold the
    # only copy of the data.
    state = {**STREAMING, "primary_sysid": "999"}
    action, why = replication.replica_action(state)
    assert action == "refuse" and "system identifier" in why and "postgres_reseed" in why
    assert replication.replica_action(state, reseed_allowed=True)[0] == "seed"


def test_a_standby_left_on_an_old_timeline_is_reseeded_only_on_the_operator_s_word():
    state = {**STREAMING, "receiver": "", "primary_tli": "2"}
    action, why = replication.replica_action(state)
    assert action == "refuse" and "timeline 1" in why and "2" in why
    assert replication.replica_action(state, reseed_allowed=True)[0] == "seed"


@pytest.mark.parametrize("count", ["3", ""], ids=["databases", "unknown (cluster down)"])
def test_a_cluster_with_data_that_is_not_a_standby_is_never_wiped(count):
    state = {**STREAMING, "standby": "0", "user_databases": count, "receiver": ""}
    action, why = replication.replica_action(state)
    assert action == "refuse" and "not wiped" in why


def test_slot_names_are_valid_identifiers():
    assert replication.slot_name("db-2.internal") == "galion_db_2_internal"


def test_conninfo_names_the_passfile_never_a_password():
    conninfo = replication.primary_conninfo("10.0.0.4", 5432, "replicator", "db2")
    assert f"passfile={replication.PASSFILE}" in conninfo and "password" not in conninfo
    assert "application_name=galion_db2" in conninfo


def test_passfile_line_escapes_colons_and_backslashes():
    line = replication.passfile_line("10.0.0.4", 5432, "replicator", r"a:b\c")
    assert line == "10.0.0.4:5432:*:replicator:a\\:b\\\\c\n"


def test_the_fenced_former_primary_is_rejoined_and_an_unfenced_one_refused():
    former = {
        **STREAMING,
        "cluster": "down",
        "standby": "0",
        "user_databases": "",
        "receiver": "",
        "primary_tli": "2",
    }
    action, why = replication.replica_action({**former, "fenced": "1"})
    assert action == "rejoin" and "pg_rewind" in why
    # Out of reach during the failover, back unfenced: it may hold writes the new primary
    # lacks, so only the operator (failover.py again, which fences it) decides.
    action, why = replication.replica_action({**former, "fenced": "0"})
    assert action == "refuse" and "failover.py" in why


def test_a_rejoin_that_stopped_halfway_is_finished():
    # Rewound and marked a standby, but the start or the marker's removal failed.
    assert replication.replica_action({**STREAMING, "fenced": "1"})[0] == "rejoin"


PROMOTABLE = {
    "cluster": "online",
    "in_recovery": "t",
    "receive_lsn": "0/3000148",
    "last_receipt": "2026-12-06 00:01:02+00",
    "upstream_lsn": "0/3000148",
    "unreceived_bytes": "0",
}
MIB = 1024 * 1024


def test_a_caught_up_replica_is_promoted():
    action, report = replication.promote_action(PROMOTABLE, MIB)
    assert action == "promote" and "0 bytes" in report


def test_a_replica_behind_by_more_than_the_knob_is_refused_unless_forced():
    state = {**PROMOTABLE, "unreceived_bytes": str(2 * MIB), "upstream_lsn": "0/3200148"}
    action, report = replication.promote_action(state, MIB)
    assert action == "refuse"
    assert str(2 * MIB) in report and "postgres_failover_force" in report
    action, report = replication.promote_action(state, MIB, force=True)
    assert action == "promote" and "lost" in report


def test_a_primary_out_of_reach_is_an_unmeasured_loss_the_operator_must_accept():
    state = {**PROMOTABLE, "upstream_lsn": "", "unreceived_bytes": ""}
    action, report = replication.promote_action(state, MIB)
    assert action == "refuse" and "0/3000148" in report and "2026-12-06" in report
    assert replication.promote_action(state, MIB, force=True)[0] == "promote"


@pytest.mark.parametrize(
    "state, action",
    [
        ({**PROMOTABLE, "in_recovery": "f"}, "done"),
        ({**PROMOTABLE, "cluster": "down"}, "refuse"),
        ({"cluster": "missing"}, "refuse"),
        ({**PROMOTABLE, "in_recovery": ""}, "refuse"),
    ],
    ids=["already promoted", "stopped", "no cluster", "cannot tell"],
)
def test_what_is_not_a_running_standby_is_never_promoted(state, action):
    assert replication.promote_action(state, MIB, force=True)[0] == action


@pytest.mark.parametrize("major, message", [(15, "text, text)"), (17, "text, text, boolean)")])
def test_the_rejoin_may_write_a_wal_message_on_every_major(major, message):
    # PostgreSQL 17 added a `flush` argument: a grant on the old signature would fail.
    from operations.postgres import replication as postgres_replication

    functions = postgres_replication.rewind_functions(major)
    assert any(f.startswith("pg_catalog.pg_logical_emit_message(") for f in functions)
    assert [f for f in functions if "emit_message" in f][0].endswith(message)
    assert "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)" in functions


def test_a_failover_is_planned_once_while_every_host_loads_the_deploy_at_once(monkeypatch):
    """pyinfra loads the deploy for each host in a greenlet of its own, all at once: the
    first decides (reading facts, so yielding to the others), the rest follow its plan."""
    import gevent

    from actions import failover_steps

    decided = []

    def decide():
        gevent.sleep(0.01)  # a fact read over SSH: the other greenlets run meanwhile
        decided.append(failover_steps.Plan("promote", "0 bytes behind", "db2", fence={"db1"}))
        return decided[-1]

    monkeypatch.setattr(failover_steps, "_plan", [])
    monkeypatch.setattr(failover_steps, "_decide", decide)
    greenlets = [gevent.spawn(failover_steps.plan) for _ in range(6)]
    gevent.joinall(greenlets, raise_error=True)
    assert len(decided) == 1
    assert all(g.value is decided[0] for g in greenlets)


class _Data(dict):
    __getattr__ = dict.get


class _Host:
    """An inventory host whose facts are canned: the replica state it answers."""

    def __init__(self, name, state=None):
        self.name = name
        self.state = state
        self.data = _Data(
            private_address=f"10.0.0.{len(name)}",
            postgres_port=5432,
            postgres_version=17,
            postgres_replication_role="replicator",
        )

    def get_fact(self, fact, **kwargs):
        return {} if fact.__name__ == "OsRelease" else self.state


class _Inventory:
    def __init__(self, active, **groups):
        self.groups, self.active = groups, active

    def get_group(self, name, default=None):
        return self.groups.get(name, default)

    def get_active_hosts(self):
        return self.active


def test_apps_read_only_from_replicas_that_stream_after_this_run():
    """Reached, not fenced or out of reach in a failover, not a refused former primary."""
    from galion import app_environment, run_context

    former_primary = {**STREAMING, "standby": "", "receiver": ""}  # failover could not fence it
    db1, db2, db3, db4 = (
        _Host("db1"),
        _Host("db2", STREAMING),
        _Host("db3", former_primary),
        _Host("db4", {**STREAMING, "fenced": "1"}),  # rejoined by this converge
    )
    down = _Host("db5", STREAMING)
    inventory = _Inventory([db1, db2, db3, db4], db=[db1], db_replica=[db2, db3, db4, down])
    assert app_environment.serving_replicas(inventory) == {"db2", "db4"}
    run_context.FENCED_OR_UNREACHED.add("db4")  # as actions/failover.py does in its run
    try:
        assert app_environment.serving_replicas(inventory) == {"db2"}
    finally:
        run_context.FENCED_OR_UNREACHED.clear()
