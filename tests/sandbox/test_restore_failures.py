"""Restores that fail, or would lose data, leave PostgreSQL serving what it served.

Each test makes a restore fail on purpose (a target before any backup, an unreachable
repository, a corrupt backup set, a dump that cannot be restored) and checks that the
same rows are still served from the same cluster; and that restore=latest right after
a burst of commits brings every committed row back.
"""

import json
import time
from contextlib import contextmanager

import pytest

from sandbox.converge import converge
from tests.drills import NODE, major, psql, restore, run_restore

# The failure paths are shell and pgBackRest logic, the same on every distro: first only.
pytestmark = [
    pytest.mark.skipif(NODE is None, reason="no backups host in the inventory"),
    pytest.mark.once,
]


def _system_identifier() -> str:
    return psql("select system_identifier from pg_control_system()")


def _snapshot(marker: str) -> dict:
    # The metrics timer adds a canary row every 5 minutes: those do not count.
    return {
        "system": _system_identifier(),
        "rows": psql("select count(*) from ops.canary where note is distinct from 'metrics'"),
        "marker": psql(f"select count(*) from ops.canary where note = '{marker}'"),
    }


@pytest.fixture(scope="module")
def full_backup():
    assert NODE.host.run("systemctl start galion-backup-full.service").rc == 0
    yield
    assert NODE.host.run("systemctl start galion-backup-full.service").rc == 0


@pytest.fixture
def serving(full_backup):
    """A marker row; after the test, PostgreSQL must serve exactly what it did before."""
    marker = f"kept-{time.time_ns()}"
    psql(f"insert into ops.canary (note) values ('{marker}')")
    before = _snapshot(marker)
    yield before
    assert _snapshot(marker) == before
    leftovers = NODE.host.run(f"ls -d /var/lib/postgresql/{major()}/main.pre-restore-* 2>/dev/null")
    assert leftovers.stdout.strip() == "", "a failed restore left a safety copy behind"


@contextmanager
def _on_the_node(do: str, undo: str):
    """`do` on the backups host for the length of the block, `undo` after it, even on failure."""
    NODE.host.check_output(do)
    try:
        yield
    finally:
        NODE.host.run(undo)


def _failed(proc, reason: str):
    assert proc.returncode != 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert reason in output, output[-3000:]


def test_restore_to_a_time_before_any_backup_changes_nothing(serving):
    proc = run_restore("restore=time", "restore_target=2001-01-01 00:00:00+00")
    _failed(proc, "no backup in repo2 ended before 2001-01-01 00:00:00+00")
    assert "nothing was changed" in proc.stdout + proc.stderr


def test_restore_from_an_unreachable_repository_changes_nothing(serving, sandbox_state):
    block = (
        f"-d {sandbox_state['gateway']} -p tcp --dport {sandbox_state['s3']['port']} "
        "-j REJECT --reject-with tcp-reset"
    )
    with _on_the_node(f"iptables -I OUTPUT {block}", f"iptables -D OUTPUT {block}"):
        proc = run_restore("restore=latest", "restore_repo=2")
    _failed(proc, "nothing was changed")
    assert "repo2" in proc.stdout + proc.stderr


def test_a_corrupt_backup_set_puts_the_data_directory_back(serving):
    """The checks pass, the restore itself fails after the data directory moved."""
    info = json.loads(
        NODE.host.check_output(
            "runuser -u postgres -- pgbackrest --stanza=main --repo=1 --output=json info"
        )
    )
    label = info[0]["backup"][-1]["label"]
    repo = NODE.data["backups_local_repo"]
    control = NODE.host.check_output(
        f"find {repo}/backup/main/{label}/pg_data/global -name 'pg_control*' | head -n 1"
    )
    with _on_the_node(f"mv {control} /root/pg_control.kept", f"mv /root/pg_control.kept {control}"):
        proc = run_restore("restore=latest", "restore_repo=1")
    _failed(proc, "the previous data directory is back in place")
    assert "PostgreSQL runs on the previous data again" in proc.stdout + proc.stderr


def test_a_failed_pg_restore_leaves_the_live_database_untouched(serving):
    """A dump pg_restore can list but not restore (an owner that does not exist)."""
    db = NODE.data["postgres_databases"][0]["name"]
    path = f"{NODE.data['backups_dump_dir']}/{db}/{db}-99991231T235959Z.dump"
    pg = "runuser -u postgres --"
    dump = (
        f"{pg} psql -X -q -c 'create role galion_ghost' -c 'create database galion_scratch' && "
        f"{pg} psql -X -q -d galion_scratch -c 'create table t (i int)' "
        "-c 'alter table t owner to galion_ghost' && "
        f"{pg} pg_dump -Fc -f {path} galion_scratch && "
        f"{pg} psql -X -q -c 'drop database galion_scratch' -c 'drop role galion_ghost'"
    )
    with _on_the_node(dump, f"rm -f {path}"):
        proc = run_restore("restore=database", f"restore_database={db}")
    _failed(proc, f"{db} is untouched")
    left = psql("select count(*) from pg_database where datname like '%restore%'")
    assert left == "0", "the half-restored database was left behind"


def test_drills_dumps_and_restores_never_fill_the_disk_past_the_floor(serving):
    """With a floor larger than the disk (9 TB, within preflight's bound): the drill is
    skipped and says so in its metric, the dump refuses, and a restore refuses before it
    touches anything."""
    converge("--data", "backups_free_space_floor_mb=9000000").check()
    try:
        assert NODE.host.run("systemctl start galion-restore-drill.service").rc == 0
        metrics = NODE.host.file(
            f"{NODE.data['backups_textfile_dir']}/galion_restore_drill.prom"
        ).content_string
        assert 'galion_restore_drill_skipped{repo="repo2",reason="disk"} 1' in metrics
        dump = NODE.host.run("/usr/local/sbin/galion-pgdump")
        assert dump.rc != 0 and "skipped" in dump.stderr, dump.stderr
        _failed(run_restore("restore=latest", "restore_repo=1"), "MB floor; nothing was changed")
    finally:
        converge().check()


def test_latest_restore_brings_back_every_committed_row(full_backup):
    """Rows committed a moment before restore=latest (not yet archived by
    archive_timeout) are all there afterwards."""
    marker = f"burst-{time.time_ns()}"
    psql(f"insert into ops.canary (note) select '{marker}' from generate_series(1, 200)")
    restore("restore=latest", "restore_repo=2")
    assert psql(f"select count(*) from ops.canary where note = '{marker}'") == "200"
    NODE.host.run(f"rm -rf /var/lib/postgresql/{major()}/main.pre-restore-*")


def test_a_database_comes_back_from_its_offsite_dump(full_backup):
    """The happy path of restore=database from off-site: swapped in, the live one kept
    as a safety copy, the downloaded dump removed."""
    db = NODE.data["postgres_databases"][0]["name"]
    assert NODE.host.run("systemctl start galion-pgdump.service").rc == 0
    count = "select count(*) from ops.canary where note is distinct from 'metrics'"
    before = psql(count)
    restore("restore=database", f"restore_database={db}", "restore_from=offsite")
    assert psql(count) == before
    kept = psql(f"select datname from pg_database where datname like '{db}_pre_restore_%'")
    assert kept, "no safety copy of the live database"
    assert NODE.host.run(f"ls {NODE.data['backups_dump_dir']}/{db}/*.offsite").rc != 0
    for name in kept.split():
        assert NODE.host.run(f"runuser -u postgres -- dropdb -- {name}").rc == 0
