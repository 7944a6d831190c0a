"""Backups on backups hosts, checked live (operations/backups/)."""

import json

import pytest

GROUP = "backups"
STANZA = "main"


def pgbackrest(node, args: str):
    return node.host.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} {args}")


def psql(node, sql: str, database: str = "postgres") -> str:
    return node.host.check_output(f'runuser -u postgres -- psql -X -At -d {database} -c "{sql}"')


def test_wal_archiving_through_pgbackrest(node):
    assert psql(node, "show archive_mode") == "on"
    assert psql(node, "show archive_command") == f"pgbackrest --stanza={STANZA} archive-push %p"
    assert psql(node, "select setting from pg_settings where name = 'archive_timeout'") == str(
        node.data["backups_archive_timeout"]
    )


def test_secret_configs_are_private(node):
    conf = node.host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.mode) == ("postgres", 0o600)
    env = node.host.file("/etc/galion/backups.env")
    assert (env.user, env.mode) == ("root", 0o600)
    assert "repo2-cipher-type=aes-256-cbc" in conf.content_string


# Each timer and the knob that schedules it (the metrics: every 5 minutes, fixed).
TIMERS = {
    "galion-backup-full": "backups_full_schedule",
    "galion-backup-diff": "backups_diff_schedule",
    "galion-pgdump": "backups_dump_schedule",
    "galion-restore-drill": "backups_drill_schedule",
    "galion-backup-metrics": None,
}


def test_timers_scheduled_as_the_data_says(node):
    for name, knob in TIMERS.items():
        schedule = node.data[knob] if knob else "*:0/5"
        timer = node.host.service(f"{name}.timer")
        assert timer.is_enabled and timer.is_running, name
        calendar = node.host.check_output(f"systemctl show -p TimersCalendar --value {name}.timer")
        normalized = node.host.check_output(
            f"systemd-analyze calendar '{schedule}' | "
            "awk '/Normalized form/ {sub(/.*: /, \"\"); print}'"
        )
        assert normalized in calendar, (name, calendar)


def test_full_backup_to_both_repos_then_check_and_verify(node):
    assert node.host.run("systemctl start galion-backup-full.service").rc == 0
    info = json.loads(pgbackrest(node, "--output=json info").stdout)
    repos = {r["key"]: r["status"]["code"] for r in info[0]["repo"]}
    assert repos == {1: 0, 2: 0}, repos
    backed_up = {b["database"]["repo-key"] for b in info[0]["backup"] if b["type"] == "full"}
    assert backed_up == {1, 2}
    check = pgbackrest(node, "check")
    assert check.rc == 0, check.stderr
    for repo in (1, 2):
        verify = pgbackrest(node, f"--repo={repo} verify")
        assert verify.rc == 0, verify.stdout + verify.stderr


def test_backup_metrics_for_monitoring(node):
    node.host.check_output("/usr/local/sbin/galion-backup-metrics")
    prom = node.host.file(f"{node.data['backups_textfile_dir']}/galion_backup.prom").content_string
    for repo in ("repo1", "repo2"):
        assert f'galion_backup_last_success_timestamp_seconds{{repo="{repo}",type="full"}}' in prom
    assert "galion_wal_archive_dropped_total 0" in prom
    assert "galion_wal_archive_failed_total 0" in prom


def test_restore_drill_from_offsite_succeeds_and_reports(node):
    result = node.host.run("systemctl start galion-restore-drill.service")
    assert result.rc == 0, node.host.run(
        "journalctl -u galion-restore-drill -n 30 --no-pager"
    ).stdout
    prom = node.host.file(
        f"{node.data['backups_textfile_dir']}/galion_restore_drill.prom"
    ).content_string
    assert 'galion_restore_drill_success{repo="repo2"} 1' in prom
    assert not node.host.file("/var/lib/galion/drill").exists
    # The scratch server is gone again.
    assert node.host.check_output(f"ss -Htln 'sport = :{node.data['backups_drill_port']}'") == ""
    assert node.host.run("pgrep -u postgres -f /var/lib/galion/drill").rc == 1


def test_logical_dumps_local_and_offsite(node):
    assert node.host.run("systemctl start galion-pgdump.service").rc == 0
    for db in node.data["postgres_databases"]:
        listing = node.host.check_output(f"ls -l {node.data['backups_dump_dir']}/{db['name']}/")
        assert ".dump" in listing and "-rw-------" in listing
    remote = node.host.check_output(
        "bash -c 'set -a; . /etc/galion/backups.env; . /etc/galion/backups.conf; set +a; "
        'rclone lsf -R "$OFFSITE_DUMPS" 2>/dev/null\''
    ).split()
    # Under the cluster's system identifier: another cluster's dumps never mix in.
    sysid = psql(node, "select system_identifier from pg_control_system()")
    for db in node.data["postgres_databases"]:
        prefix = f"{sysid}/{db['name']}/{db['name']}-"
        assert any(p.startswith(prefix) and p.endswith(".dump.enc") for p in remote), remote


@pytest.mark.parametrize("repo", [1, 2])
def test_the_first_converge_leaves_a_full_backup_in_each_repository(node, repo):
    """Point-in-time recovery is possible from the first minute, off-site included."""
    info = json.loads(
        node.host.check_output(
            f"runuser -u postgres -- pgbackrest --stanza=main --repo={repo} --output=json info"
        )
    )
    assert info[0]["status"]["code"] == 0, info[0]["status"]
    assert any(b["type"] == "full" for b in info[0]["backup"])
