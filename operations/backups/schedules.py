"""The systemd timers of the backups, dumps, drills and backup metrics; all but the
metrics stay off while a restore is pending."""

from pyinfra import host
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from galion.ops import config_file, render
from galion.paths import SCRIPTS_DIR


def timer_validate_command(schedule: str) -> str:
    return "systemd-analyze calendar '" + schedule + "' >/dev/null"


def jobs(data) -> list[dict]:
    """The scheduled jobs: unit name, what it runs, when."""
    return [
        {
            "name": "galion-backup-full",
            "description": "Full backup to both pgBackRest repositories",
            "command": f"{SCRIPTS_DIR}/galion-backup full",
            "schedule": data.get("backups_full_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-backup-diff",
            "description": "Differential backup to both pgBackRest repositories",
            "command": f"{SCRIPTS_DIR}/galion-backup diff",
            "schedule": data.get("backups_diff_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-pgdump",
            "description": "Logical dump of each database, copied off-site",
            "command": f"{SCRIPTS_DIR}/galion-pgdump",
            "schedule": data.get("backups_dump_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-restore-drill",
            "description": "Restore drill from the off-site repository",
            "command": f"{SCRIPTS_DIR}/galion-restore-drill 2",
            "schedule": data.get("backups_drill_schedule"),
            "jitter": "30min",
        },
        {
            "name": "galion-backup-metrics",
            "description": "Backup health metrics for monitoring",
            "command": f"{SCRIPTS_DIR}/galion-backup-metrics",
            "schedule": "*:0/5",
            "jitter": "30s",
        },
    ]


def timers():
    data = host.data
    # While a restore is pending (a new server, step 4 of docs/DISASTER_RECOVERY.md) the
    # empty cluster must not be backed up or dumped over the history it is waiting for.
    paused = bool(data.get("backups_restore_pending"))
    for job in jobs(data):
        service = config_file(
            name=f"Unit {job['name']}.service",
            dest=f"/etc/systemd/system/{job['name']}.service",
            content=render("backups/etc/systemd/job.service.j2", **job),
        )
        timer = config_file(
            name=f"Timer {job['name']}.timer ({job['schedule']})",
            dest=f"/etc/systemd/system/{job['name']}.timer",
            content=render("backups/etc/systemd/job.timer.j2", **job),
            validate=timer_validate_command(job["schedule"]),
        )
        systemd.daemon_reload(name=f"systemd reads {job['name']}", _if=any_changed(service, timer))
        keep = not paused or job["name"] == "galion-backup-metrics"
        systemd.service(
            name=f"{job['name']}.timer {'enabled and waiting' if keep else 'off: restore pending'}",
            service=f"{job['name']}.timer",
            running=keep,
            enabled=keep,
        )
