"""Disaster drills on the sandbox: lose the server's disk, restore from off-site alone.

Destructive, so last in the run (pytest takes files alphabetically). Each test heals the
sandbox afterwards: converge (stanza in the wiped local repo) and a new full backup.
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox.converge import converge, pyinfra
from tests.inventory import in_group

NODE = in_group("backups")[0] if in_group("backups") else None
pytestmark = pytest.mark.skipif(NODE is None, reason="no backups host in the inventory")

WRITER = """cat > /root/canary-writer <<'END'
#!/bin/bash
echo $$ > /run/canary-writer.pid
while true; do
    runuser -u postgres -- psql -X -q -d galion -c 'insert into ops.canary default values' >/dev/null 2>&1
    sleep 1
done
END
chmod 700 /root/canary-writer"""


def psql(sql: str) -> str:
    return NODE.host.check_output(f"runuser -u postgres -- psql -X -At -d galion -c \"{sql}\"")


def major() -> int:
    return int(psql("show server_version_num")) // 10000


def start_writer():
    NODE.host.check_output(WRITER)
    NODE.host.check_output("nohup /root/canary-writer >/dev/null 2>&1 &")


def stop_writer():
    NODE.host.run("kill $(cat /run/canary-writer.pid) 2>/dev/null; rm -f /run/canary-writer.pid")


def host_time(sql_ts: str) -> datetime:
    """A timestamptz as psql prints it in UTC (2026-11-22 03:01:02.123456+00)."""
    return datetime.fromisoformat(sql_ts.strip().replace(" ", "T").replace("+00", "+00:00"))


def wait_archived_after(moment: datetime, timeout: float = 150):
    """Until pg_stat_archiver has archived a segment after `moment`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = psql("select coalesce(last_archived_time, 'epoch') from pg_stat_archiver")
        if last != "-infinity" and host_time(last) > moment:
            return
        time.sleep(2)
    raise AssertionError(f"nothing archived after {moment} within {timeout}s")


def destroy_disk():
    """The server's disk dies: PostgreSQL killed, data directory and local repo gone."""
    data = f"/var/lib/postgresql/{major()}/main"
    unit = f"postgresql@{major()}-main"
    NODE.host.check_output(
        f"systemctl kill -s KILL {unit}; sleep 1; systemctl stop {unit}; "
        f"rm -rf {data} {NODE.data['backups_local_repo']}/* /var/spool/pgbackrest/*")


def restore(*data: str):
    args = []
    for item in data:
        args += ["--data", item]
    proc = pyinfra("-y", "inventories/sandbox.py", "restore.py", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


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
    marker = "galion-canary-" + datetime.now(timezone.utc).strftime("%H%M%S%f")
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
    row_id, written = psql(f"select id, written_at at time zone 'UTC' from ops.canary "
                           f"where id >= {first} order by id desc limit 1").split("|")
    target = host_time(written + "+00") + timedelta(milliseconds=500)
    time.sleep(8)  # rows after T, which the restore must not bring back
    wait_archived_after(target + timedelta(seconds=5))
    stop_writer()
    assert int(psql(f"select count(*) from ops.canary where id > {row_id}")) >= 3
    destroy_disk()

    restore("restore=time", f"restore_target={target.isoformat(sep=' ')}", "restore_repo=2")
    ids = [int(i) for i in psql(f"select id from ops.canary where id >= {first} order by id").split()]
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
    print(f"\nRPO measured: {lost:.1f}s of canary rows lost "
          f"(archive_timeout {NODE.data['backups_archive_timeout']}s)")
    assert lost <= NODE.data["backups_archive_timeout"] + 30, lost


def test_restore_request_errors_are_clear_and_touch_nothing():
    proc = pyinfra("-y", "inventories/sandbox.py", "restore.py", "--data", "restore=time",
                   "--data", "restore_target=yesterday")
    assert proc.returncode == 2
    assert "restore: restore_target='yesterday': give a time with its offset" in proc.stderr
