"""The backup, dump, drill, metrics and restore scripts (files/backups/), the settings
they read and the off-site credentials of the dump script."""

from pyinfra import host

from galion.ops import config_file, render, shell_script
from galion.paths import role_files

from .canary import canary_database
from .repository import STANZA, s3_settings

FILES = role_files("backups")
SCRIPTS = (
    "galion-backup",
    "galion-pgdump",
    "galion-restore-drill",
    "galion-backup-metrics",
    "galion-restore",
)


def install(major: int):
    """Their settings, the dump script's credentials (secret), then the scripts."""
    data = host.data
    s3 = s3_settings(data)
    config_file(
        name="Settings of the backup scripts",
        dest="/etc/galion/backups.conf",
        content=render(
            "backups/etc/galion/backups.conf.j2",
            stanza=STANZA,
            major=major,
            postgres_port=data.postgres_port,
            databases=[db["name"] for db in data.postgres_databases],
            canary_database=canary_database(data),
            free_space_floor_mb=data.backups_free_space_floor_mb,
            restore_wal_wait=data.backups_restore_wal_wait_seconds,
            restore_replay_wait=data.backups_restore_replay_wait_seconds,
            dump_dir=data.backups_dump_dir,
            retention_days=data.backups_retention_days,
            s3_bucket=data.backups_s3_bucket,
            s3_path=data.backups_s3_path,
            textfile_dir=data.backups_textfile_dir,
            drill_port=data.backups_drill_port,
        ),
    )
    config_file(
        name="Off-site credentials of the dump script (secret)",
        dest="/etc/galion/backups.env",
        mode="600",
        secret=True,
        content=render("backups/etc/galion/backups.env.j2", **s3),
    )
    for script in SCRIPTS:
        shell_script(FILES / script)
