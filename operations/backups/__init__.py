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
from galion.role import Role
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


KNOBS = {
    # Seconds after which a partly filled WAL segment is archived anyway: bounds the data
    # lost when the disk dies (RPO) to about this much.
    "backups_archive_timeout": 60,
    # Days backups are kept, in both repositories and for the logical dumps (time-based).
    "backups_retention_days": 30,
    # Local repository (repo1): fast restores; lost with the disk, hence repo2.
    "backups_local_repo": "/var/lib/pgbackrest",
    # WAL waiting to be pushed beyond this is dropped (so the disk does not fill and stop
    # PostgreSQL); the drop is counted in galion_wal_archive_dropped_total and alerts.
    "backups_archive_queue_max": "4GiB",
    # Off-site repository (repo2) on S3-compatible storage (Backblaze B2, Cloudflare R2):
    # endpoint host, port, region, bucket and path inside it. Keys: BACKUPS_S3_* secrets.
    "backups_s3_endpoint": "s3.eu-central-003.backblazeb2.com",
    # TCP port of the S3 endpoint (HTTPS).
    "backups_s3_port": 443,
    # Region name the provider expects (B2: as in the endpoint; R2: "auto").
    "backups_s3_region": "eu-central-003",
    # Bucket (private, created in the provider's console).
    "backups_s3_bucket": "galion-backups",
    # Folder inside the bucket, so one bucket can serve several environments.
    "backups_s3_path": "/titanaxe",
    # Address the operator's machine reaches the endpoint at, for the check of the cipher
    # passphrase before a run; None: the endpoint's name (set it only when that name
    # resolves on the hosts alone).
    "backups_s3_check_address": None,
    # CA file (local path) the hosts trust for the endpoint; None: the system's CAs.
    "backups_s3_ca_file": None,
    # systemd OnCalendar of the weekly full backup (both repositories).
    "backups_full_schedule": "Sun *-*-* 01:00",
    # systemd OnCalendar of the daily differential backup (the plan's 02:00), not on the
    # full backup's day: a long full would hold pgBackRest's lock and fail the diff.
    "backups_diff_schedule": "Mon..Sat *-*-* 02:00",
    # systemd OnCalendar of the daily logical dump of each database (pg_dump -Fc).
    "backups_dump_schedule": "*-*-* 02:30",
    # systemd OnCalendar of the weekly restore drill into a scratch directory.
    "backups_drill_schedule": "Sat *-*-* 04:00",
    # Port of the scratch PostgreSQL the drill starts (loopback-only, never the live one).
    "backups_drill_port": 5499,
    # Where the logical dumps are kept locally (one folder per database).
    "backups_dump_dir": "/var/backups/galion",
    # Free space (MB) restores and drills leave on the database's disk: one that would
    # go below it is refused (a drill is skipped and says so in its metric).
    "backups_free_space_floor_mb": 1024,
    # Seconds restore=latest waits for the newest WAL to be archived before it stops
    # PostgreSQL (it refuses rather than lose committed transactions).
    "backups_restore_wal_wait_seconds": 120,
    # Seconds a cluster restore waits for WAL replay; longer is reported as still
    # replaying, not as failed.
    "backups_restore_replay_wait_seconds": 600,
    # Database holding ops.canary, the table the drills and restores count rows in (one
    # row every 5 min from the metrics job); None: the first of postgres_databases.
    "backups_canary_database": None,
    # node_exporter's textfile directory: backup and drill metrics for monitoring.
    "backups_textfile_dir": "/var/lib/prometheus/node-exporter",
}

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


ROLE = Role(
    groups=("backups",),
    order=40,
    knob_prefixes=("backups_",),
    required_secrets=checks.required_secrets,
    check_host=checks.check_host,
    check_inventory=checks.check_inventory,
    checks=(
        (
            "backups_archive_timeout",
            int_between(10, 3600),
            "is not seconds between 10 and 3600",
            "use 60: it bounds the data a dead disk takes with it",
        ),
        ("backups_retention_days", int_between(1, 3650), "is not a number of days", "use 30"),
        (
            "backups_s3_endpoint",
            is_address_or_name,
            "is not a host name",
            "e.g. s3.eu-central-003.backblazeb2.com",
        ),
        ("backups_s3_port", is_port, "is not a TCP port", "use 443"),
        (
            "backups_s3_bucket",
            matches(BUCKET),
            "is not an S3 bucket name",
            "lowercase letters, digits, dots and dashes",
        ),
        (
            "backups_s3_path",
            lambda v: isinstance(v, str) and v.startswith("/") and " " not in v,
            "is not a path starting with /",
            "e.g. /titanaxe",
        ),
        (
            "backups_s3_ca_file",
            is_readable_file_or_none,
            "is not a readable file",
            "give the CA file's local path, or None for the system's CAs",
        ),
        ("backups_drill_port", is_port, "is not a TCP port", "use 5499"),
        ("backups_free_space_floor_mb", int_between(0, 10**7), "is not a size in MB", "use 1024"),
        (
            "backups_restore_wal_wait_seconds",
            int_between(10, 3600),
            "is not seconds between 10 and 3600",
            "use 120",
        ),
        (
            "backups_restore_replay_wait_seconds",
            int_between(10, 86400),
            "is not seconds between 10 and 86400",
            "use 600",
        ),
    ),
)
