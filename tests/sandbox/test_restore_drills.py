"""Disaster drills on the sandbox: lose the server's disk, restore from off-site alone.

Destructive, so last in the run (pytest takes files alphabetically). Each test heals the
sandbox afterwards: converge (stanza in the wiped local repo) and a new full backup.
"""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.converge import converge, pyinfra
from tests.drills import (
    NODE,
    destroy_disk,
    host_time,
    psql,
    restore,
    start_writer,
    stop_writer,
    wait_archived_after,
)

pytestmark = pytest.mark.skipif(NODE is None, reason="no backups host in the inventory")


@pytest.fixture
def fresh_backup():
    psql("set timezone = 'UTC'")
    assert NODE.host.run("systemctl start galion-backup-full.service").rc == 0
    first = int(psql("select coalesce(max(id), 0) from ops.canary")) + 1
    yield first
    stop_writer()
    converge().check()  # stanza-create in the wiped local repo
    assert NODE.host.run("systemctl start galion-backup-full.service").rc == 0


def test_offsite_objects_hold_no_plaintext(sandbox_state):
    marker = "galion-canary-" + datetime.now(UTC).strftime("%H%M%S%f")
    psql(f"insert into ops.canary (note) values ('{marker}')")
    assert NODE.host.run("systemctl start galion-backup-diff.service").rc == 0
    assert NODE.host.run("systemctl start galion-pgdump.service").rc == 0
    psql("select pg_switch_wal()")
    time.sleep(3)
    s3_dir = Path(sandbox_state["s3"]["dir"])
    objects = [p for p in s3_dir.rglob("*") if p.is_file()]
    assert any("dumps" in str(p) for p in objects) and any("archive" in str(p) for p in objects)
    for path in objects:
        assert marker.encode() not in path.read_bytes(), path
    # The same row is in the newest local dump (compressed, not encrypted): it was dumped.
    newest = f"$(ls -1t {NODE.data['backups_dump_dir']}/galion/*.dump | head -n 1)"
    assert NODE.host.run(f"pg_restore -a -f - {newest} | grep -q '{marker}'").rc == 0


def test_point_in_time_restore_from_offsite_alone(fresh_backup):
    first = fresh_backup
    start_writer()
    time.sleep(12)
    # T: half a second after a row's commit, well between two rows.
    row_id, written = psql(
        f"select id, written_at at time zone 'UTC' from ops.canary "
        f"where id >= {first} order by id desc limit 1"
    ).split("|")
    target = host_time(written + "+00") + timedelta(milliseconds=500)
    time.sleep(8)  # rows after T, which the restore must not bring back
    wait_archived_after(target + timedelta(seconds=5))
    stop_writer()
    assert int(psql(f"select count(*) from ops.canary where id > {row_id}")) >= 3
    destroy_disk()

    restore("restore=time", f"restore_target={target.isoformat(sep=' ')}", "restore_repo=2")
    ids = [
        int(i) for i in psql(f"select id from ops.canary where id >= {first} order by id").split()
    ]
    assert ids == list(range(first, int(row_id) + 1)), (ids[:3], ids[-3:], row_id)


def test_latest_restore_after_losing_the_disk_loses_at_most_archive_timeout(fresh_backup):
    first = fresh_backup
    start_writer()
    # Long enough for archive_timeout to have closed at least one segment of canaries.
    time.sleep(NODE.data["backups_archive_timeout"] + 15)
    killed_at = host_time(NODE.host.check_output("date -u '+%Y-%m-%d %H:%M:%S.%6N'") + "+00")
    destroy_disk()
    stop_writer()

    restore("restore=latest", "restore_repo=2")
    newest = psql(f"select max(written_at) at time zone 'UTC' from ops.canary where id >= {first}")
    assert newest, "no canary row written after the backup came back"
    lost = (killed_at - host_time(newest + "+00")).total_seconds()
    print(
        f"\nRPO measured: {lost:.1f}s of canary rows lost "
        f"(archive_timeout {NODE.data['backups_archive_timeout']}s)"
    )
    assert lost <= NODE.data["backups_archive_timeout"] + 30, lost


def test_restore_request_errors_are_clear_and_touch_nothing():
    proc = pyinfra(
        "-y",
        "inventories/sandbox.py",
        "actions/restore.py",
        "--data",
        "restore=time",
        "--data",
        "restore_target=yesterday",
    )
    assert proc.returncode == 2
    assert "restore: restore_target='yesterday': give a time with its offset" in proc.stderr
