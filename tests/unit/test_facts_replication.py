"""galion.facts.replication: a replica's state, the system identifier, the promotion state.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

from galion.facts import replication
from tests.unit.fact_coverage import covers


@covers(replication.PostgresReplicaState)
class TestPostgresReplicaState:
    def test_command_is_valid_shell_and_reads_the_primary_with_the_passfile(self, tmp_path):
        command = replication.PostgresReplicaState().command(
            15, "host=10.0.0.4 port=5432 user=replicator passfile=/p application_name=galion_db2"
        )
        script = tmp_path / "fact.sh"
        script.write_text(command)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert "replication=true" in command and "IDENTIFY_SYSTEM" in command
        assert replication.PostgresReplicaState().default() == {"cluster": "missing"}

    def test_process(self):
        output = [
            "cluster=online",
            "standby=1",
            "user_databases=2",
            "local_sysid=7312345678901234567",
            "local_tli=1",
            "receiver=streaming",
            "primary_sysid=7312345678901234567",
            "primary_tli=1",
        ]
        state = replication.PostgresReplicaState().process(output)
        assert state["receiver"] == "streaming" and state["standby"] == "1"
        assert state["primary_sysid"] == state["local_sysid"]


@covers(replication.PostgresPromotionState)
class TestPostgresPromotionState:
    def test_command_is_valid_shell_and_asks_the_primary_over_the_replicas_conninfo(self, tmp_path):
        command = replication.PostgresPromotionState().command(16)
        script = tmp_path / "fact.sh"
        script.write_text(command)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert "show primary_conninfo" in command and "IDENTIFY_SYSTEM" in command
        assert "pg_wal_lsn_diff" in command
        assert replication.PostgresPromotionState().default() == {"cluster": "missing"}

    def test_process(self):
        output = [
            "cluster=online",
            "in_recovery=t",
            "receive_lsn=0/3000148",
            "last_receipt=2026-12-06 00:01:02+00",
            "upstream_lsn=0/3000200",
            "unreceived_bytes=184",
        ]
        state = replication.PostgresPromotionState().process(output)
        assert state["in_recovery"] == "t" and state["unreceived_bytes"] == "184"
        assert state["last_receipt"] == "2026-12-06 00:01:02+00"


@covers(replication.PostgresSystemIdentifier)
def test_system_identifier_reads_pg_controldata(tmp_path):
    command = replication.PostgresSystemIdentifier().command(16)
    assert "/usr/lib/postgresql/16/bin/pg_controldata /var/lib/postgresql/16/main" in command
    script = tmp_path / "fact.sh"
    script.write_text(command)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert replication.PostgresSystemIdentifier().process(["7312345678901234567"]) == (
        "7312345678901234567"
    )
    assert replication.PostgresSystemIdentifier().default() == ""
