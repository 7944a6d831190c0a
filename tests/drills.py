"""Disaster-drill helpers on the sandbox's backups host (tests and bench/restore)."""

import time
from datetime import datetime

from sandbox.converge import pyinfra
from tests.inventory import in_group

NODE = in_group("backups")[0] if in_group("backups") else None
# The database holding ops.canary, as the inventory's data says (backups role).
CANARY_DB = (
    NODE.data.get("backups_canary_database") or NODE.data["postgres_databases"][0]["name"]
    if NODE
    else None
)

WRITER = (
    """cat > /root/canary-writer <<'END'
#!/bin/bash
echo $$ > /run/canary-writer.pid
while true; do
    runuser -u postgres -- psql -X -q -d %s -c 'insert into ops.canary default values' \\
        >/dev/null 2>&1
    sleep 1
done
END
chmod 700 /root/canary-writer"""
    % CANARY_DB
)


def psql(sql: str) -> str:
    return NODE.host.check_output(f'runuser -u postgres -- psql -X -At -d {CANARY_DB} -c "{sql}"')


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
        f"rm -rf {data} {NODE.data['backups_local_repo']}/* /var/spool/pgbackrest/*"
    )


def run_restore(*data: str):
    args = []
    for item in data:
        args += ["--data", item]
    return pyinfra("-y", "inventories/sandbox.py", "actions/restore.py", *args)


def restore(*data: str):
    proc = run_restore(*data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
