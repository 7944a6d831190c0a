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
