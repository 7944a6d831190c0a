"""Backups that restore: pgBackRest (local + encrypted off-site repo), WAL archiving,
schedules, logical dumps, a restore drill, and health metrics for monitoring.

One module per concern, in the order of the entry point below: packages.py (pgBackRest,
rclone, their directories), repository.py (pgBackRest's config of both repositories,
the stanza, the first full backup), scripts.py (the backup scripts and their settings),
canary.py (the table drills count rows in), archiving.py (PostgreSQL's WAL archiving),
schedules.py (the systemd timers). checks.py holds preflight's checks of several keys,
the groups and the off-site repository's passphrase.
"""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease

from galion import postgresql
from galion.role import Knob, Role
from galion.validators import (
    int_between,
    is_address_or_name,
    is_port,
    is_readable_file_or_none,
    matches,
)

from . import archiving, canary, checks, packages, repository, schedules, scripts


@deploy("Backups")
def backups():
    major = postgresql.version(host.data, host.get_fact(OsRelease))
    packages.install()
    repository.configure(major)
    scripts.install(major)
    canary.create()
    # The stanza first, then archive_command: nothing is pushed to a repo that is not ready.
    repository.create_stanza()
    archiving.archive_wal(major)
    repository.first_backup()
    schedules.timers()


BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

KNOBS = {
    "backups_archive_timeout": Knob(
        60,
        "Seconds after which a partly filled WAL segment is archived anyway: about the most "
        "data a dead disk takes with it (RPO).",
        check=int_between(10, 3600),
        problem="is not seconds between 10 and 3600",
        fix="use {default}: it bounds the data a dead disk takes with it",
    ),
    "backups_retention_days": Knob(
        30,
        "Days backups are kept, in both repositories and for the logical dumps (time-based).",
        check=int_between(1, 3650),
        problem="is not a number of days",
    ),
    "backups_local_repo": Knob(
        "/var/lib/pgbackrest",
        "Local repository (repo1): fast restores; lost with the disk, hence repo2.",
    ),
    # So the disk does not fill and stop PostgreSQL.
    "backups_archive_queue_max": Knob(
        "4GiB",
        "WAL waiting to be pushed beyond this is dropped (counted in "
        "galion_wal_archive_dropped_total, which alerts).",
    ),
    # The off-site repository (repo2) on S3-compatible storage (Backblaze B2, Cloudflare
    # R2): endpoint host, port, region, bucket and path inside it.
    "backups_s3_endpoint": Knob(
        "s3.eu-central-003.backblazeb2.com",
        "Host name of the off-site repository's S3 endpoint (repo2; its keys: the "
        "BACKUPS_S3_* secrets).",
        check=is_address_or_name,
        problem="is not a host name",
        fix="e.g. s3.eu-central-003.backblazeb2.com",
    ),
    "backups_s3_port": Knob(443, "TCP port of the S3 endpoint (HTTPS).", check=is_port),
    "backups_s3_region": Knob(
        "eu-central-003", 'Region name the provider expects (B2: as in the endpoint; R2: "auto").'
    ),
    "backups_s3_bucket": Knob(
        "galion-backups",
        "Bucket (private, created in the provider's console).",
        check=matches(BUCKET),
        problem="is not an S3 bucket name",
        fix="lowercase letters, digits, dots and dashes",
    ),
    "backups_s3_path": Knob(
        "/titanaxe",
        "Folder inside the bucket, so one bucket can serve several environments.",
        check=lambda v: isinstance(v, str) and v.startswith("/") and " " not in v,
        problem="is not a path starting with /",
        fix="e.g. /titanaxe",
    ),
    # Set it only when the endpoint's name resolves on the hosts alone.
    "backups_s3_check_address": Knob(
        None,
        "Address the operator's machine reaches the endpoint at, for the check of the cipher "
        "passphrase before a run; None: the endpoint's name.",
    ),
    "backups_s3_ca_file": Knob(
        None,
        "CA file (local path) the hosts trust for the endpoint; None: the system's CAs.",
        check=is_readable_file_or_none,
        fix="give the CA file's local path, or None for the system's CAs",
    ),
    "backups_full_schedule": Knob(
        "Sun *-*-* 01:00", "systemd OnCalendar of the weekly full backup (both repositories)."
    ),
    # Not on the full backup's day: a long full would hold pgBackRest's lock and fail the diff.
    "backups_diff_schedule": Knob(
        "Mon..Sat *-*-* 02:00", "systemd OnCalendar of the daily differential backup."
    ),
    "backups_dump_schedule": Knob(
        "*-*-* 02:30",
        "systemd OnCalendar of the daily logical dump of each database (pg_dump -Fc).",
    ),
    "backups_drill_schedule": Knob(
        "Sat *-*-* 04:00",
        "systemd OnCalendar of the weekly restore drill into a scratch directory.",
    ),
    "backups_drill_port": Knob(
        5499,
        "Port of the scratch PostgreSQL the drill starts (loopback-only, never the live one).",
        check=is_port,
    ),
    "backups_dump_dir": Knob(
        "/var/backups/galion",
        "Where the logical dumps are kept locally (one folder per database).",
    ),
    # A drill that would go below it is skipped and says so in its metric.
    "backups_free_space_floor_mb": Knob(
        1024,
        "Free space (MB) restores and drills leave on the database's disk: one that would go "
        "below it is refused.",
        check=int_between(0, 10**7),
        problem="is not a size in MB",
    ),
    # It refuses rather than lose committed transactions.
    "backups_restore_wal_wait_seconds": Knob(
        120,
        "Seconds restore=latest waits for the newest WAL to be archived before it stops "
        "PostgreSQL.",
        check=int_between(10, 3600),
        problem="is not seconds between 10 and 3600",
    ),
    "backups_restore_replay_wait_seconds": Knob(
        600,
        "Seconds a cluster restore waits for WAL replay; longer is reported as still "
        "replaying, not as failed.",
        check=int_between(10, 86400),
        problem="is not seconds between 10 and 86400",
    ),
    # One row every 5 min from the metrics job.
    "backups_canary_database": Knob(
        None,
        "Database holding ops.canary, the table the drills and restores count rows in; None: "
        "the first of postgres_databases.",
    ),
    "backups_textfile_dir": Knob(
        "/var/lib/prometheus/node-exporter",
        "node_exporter's textfile directory: backup and drill metrics for monitoring.",
    ),
}


ROLE = Role(
    groups=("backups",),
    order=40,
    knob_prefixes=("backups_",),
    required_secrets=checks.required_secrets,
    check_host=checks.check_host,
    check_inventory=checks.check_inventory,
)
