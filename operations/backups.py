"""Backups that restore: pgBackRest (local + encrypted off-site repo), WAL archiving,
schedules, logical dumps, a restore drill, and health metrics for monitoring."""

import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import postgresql, s3, secrets
from galion.facts import PgbackrestStanza, PostgresClusters, PostgresQuery
from galion.ops import config_file, postgres_sql, render, shell_script
from galion.preflight import (
    Problem,
    int_between,
    is_address_or_name,
    is_port,
    is_readable_file_or_none,
    matches,
    needs_group,
)
from galion.role import Role

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

STANZA = "main"
FILES = Path(__file__).resolve().parent.parent / "files" / "backups"
SCRIPTS = (
    "galion-backup",
    "galion-pgdump",
    "galion-restore-drill",
    "galion-backup-metrics",
    "galion-restore",
)
CA_PATH = "/etc/pgbackrest/s3-ca.crt"
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def required_secrets(data) -> list[str]:
    return ["BACKUPS_S3_ACCESS_KEY", "BACKUPS_S3_SECRET_KEY", "BACKUPS_CIPHER_PASSPHRASE"]


# Set to skip checks that contact remote services (unit tests of data checks, no network).
OFFLINE_VARIABLE = "GALION_PREFLIGHT_OFFLINE"
CIPHER_SECRETS = ("BACKUPS_S3_ACCESS_KEY", "BACKUPS_S3_SECRET_KEY", "BACKUPS_CIPHER_PASSPHRASE")


def opens_repository_file(encrypted: bytes, passphrase: str) -> bool:
    """Whether a pgBackRest repository file decrypts with this passphrase (pgBackRest
    writes what `openssl enc -aes-256-cbc -md sha1` reads: "Salted__", salt, AES-256-CBC)."""
    proc = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "env:GALION_PASS"],
        input=encrypted,
        capture_output=True,
        env=dict(os.environ, GALION_PASS=passphrase),
        timeout=30,
    )
    return proc.returncode == 0 and proc.stdout.startswith(b"[")


def _check_cipher(name: str, data, groups) -> list[Problem]:
    """pgBackRest cannot re-key a repository: a changed BACKUPS_CIPHER_PASSPHRASE would make
    every push, backup and restore of the existing off-site history fail."""
    if os.environ.get(OFFLINE_VARIABLE) or any(secrets.problem(k) for k in CIPHER_SECRETS):
        return []
    ca_file = data.get("backups_s3_ca_file")
    try:
        info = s3.get_object(
            data.get("backups_s3_check_address") or data.get("backups_s3_endpoint"),
            data.get("backups_s3_port"),
            data.get("backups_s3_region"),
            data.get("backups_s3_bucket"),
            f"{data.get('backups_s3_path')}/backup/{STANZA}/backup.info",
            secrets.get("BACKUPS_S3_ACCESS_KEY"),
            secrets.get("BACKUPS_S3_SECRET_KEY"),
            str(Path(ca_file).expanduser()) if ca_file else None,
        )
        opens = info is None or opens_repository_file(
            info, secrets.get("BACKUPS_CIPHER_PASSPHRASE")
        )
    except (requests.RequestException, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(
            f"preflight: warning: {name}: the off-site repository could not be read to check "
            f"BACKUPS_CIPHER_PASSPHRASE ({exc}); going on without that check",
            file=sys.stderr,
        )
        return []
    if opens:
        return []  # a new repository, or the right passphrase
    return [
        Problem(
            name,
            "secret BACKUPS_CIPHER_PASSPHRASE",
            "does not open the existing off-site repository (pgBackRest cannot re-key it)",
            "put the previous passphrase back; to change it, follow 'Changing the cipher "
            "passphrase' in docs/DISASTER_RECOVERY.md",
        )
    ]


def _check_host(name: str, data, groups) -> list[Problem]:
    problems = _check_canary(name, data, groups) + _check_cipher(name, data, groups)
    if "db" not in groups:
        problems.append(
            Problem(
                name,
                "groups",
                "is in backups but not in db",
                "pgBackRest runs beside PostgreSQL: put the primary in backups",
            )
        )
    return problems


def _check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    return needs_group(
        hosts, "backups", "db", "has no database to back up", "put the primary in group db"
    )


ROLE = Role(
    groups=("backups",),
    order=40,
    knob_prefixes=("backups_",),
    required_secrets=required_secrets,
    check_host=_check_host,
    check_inventory=_check_inventory,
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


def canary_database(data) -> str:
    return data.get("backups_canary_database") or data.get("postgres_databases")[0]["name"]


def _check_canary(name: str, data, groups) -> list[Problem]:
    wanted = data.get("backups_canary_database")
    names = [db.get("name") for db in data.get("postgres_databases") or [] if isinstance(db, dict)]
    if wanted is None or wanted in names:
        return []
    return [
        Problem(
            name,
            "backups_canary_database",
            f"{wanted!r} is not in postgres_databases",
            "name one of them, or None for the first",
        )
    ]


def stanza_create_command() -> str:
    """The async archiver holds the archive lock while it retries a missing repo: wait for
    a turn on that error (pgBackRest's [050]) only; any other error fails at once."""
    return (
        "for _ in $(seq 1 30); do out=$(runuser -u postgres -- timeout 300 pgbackrest "
        f"--stanza={STANZA} --log-level-console=warn stanza-create 2>&1) && exit 0; "
        'case "$out" in *"[050]"*|*"acquire lock"*) sleep 2 ;; '
        '*) echo "$out" >&2; exit 1 ;; esac; done; echo "$out" >&2; exit 1'
    )


def config_validate_command() -> str:
    """pgBackRest parses its whole configuration for any command: a bad value makes it
    fail, an unknown option name only warns ("configuration file contains invalid
    option"), so a warning fails the check too."""
    return (
        f"out=$(runuser -u postgres -- pgbackrest --config={{staged}} --stanza={STANZA} "
        "--log-level-console=warn help backup 2>&1); r=$?; "
        "if [ $r != 0 ] || printf '%s\\n' \"$out\" | grep -qE 'P[0-9]+ +(WARN|ERROR):'; then "
        "{ printf '%s\\n' \"$out\" | grep -E 'P[0-9]+ +(WARN|ERROR):' || printf '%s\\n' \"$out\" "
        "| tail -n 5; } >&2; exit 1; fi"
    )


def timer_validate_command(schedule: str) -> str:
    return "systemd-analyze calendar '" + schedule + "' >/dev/null"


def jobs(data) -> list[dict]:
    """The scheduled jobs: unit name, what it runs, when."""
    return [
        {
            "name": "galion-backup-full",
            "description": "Full backup to both pgBackRest repositories",
            "command": "/usr/local/sbin/galion-backup full",
            "schedule": data.get("backups_full_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-backup-diff",
            "description": "Differential backup to both pgBackRest repositories",
            "command": "/usr/local/sbin/galion-backup diff",
            "schedule": data.get("backups_diff_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-pgdump",
            "description": "Logical dump of each database, copied off-site",
            "command": "/usr/local/sbin/galion-pgdump",
            "schedule": data.get("backups_dump_schedule"),
            "jitter": "10min",
        },
        {
            "name": "galion-restore-drill",
            "description": "Restore drill from the off-site repository",
            "command": "/usr/local/sbin/galion-restore-drill 2",
            "schedule": data.get("backups_drill_schedule"),
            "jitter": "30min",
        },
        {
            "name": "galion-backup-metrics",
            "description": "Backup health metrics for monitoring",
            "command": "/usr/local/sbin/galion-backup-metrics",
            "schedule": "*:0/5",
            "jitter": "30s",
        },
    ]


def _packages():
    apt.packages(
        name="Install pgBackRest and rclone",
        packages=["pgbackrest", "rclone", "zstd", "python3"],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    for path, owner, mode in (
        (host.data.backups_local_repo, "postgres", "750"),
        ("/var/spool/pgbackrest", "postgres", "750"),
        ("/var/log/pgbackrest", "postgres", "750"),
        ("/var/lib/galion", "root", "755"),
        (host.data.backups_dump_dir, "postgres", "700"),
    ):
        files.directory(name=f"Directory {path}", path=path, user=owner, group=owner, mode=mode)


def _s3_settings(data) -> dict:
    return {
        "s3_endpoint": data.backups_s3_endpoint,
        "s3_port": data.backups_s3_port,
        "s3_region": data.backups_s3_region,
        "s3_bucket": data.backups_s3_bucket,
        "s3_path": data.backups_s3_path,
        "ca_file": CA_PATH if data.backups_s3_ca_file else None,
        "s3_access_key": secrets.get("BACKUPS_S3_ACCESS_KEY"),
        "s3_secret_key": secrets.get("BACKUPS_S3_SECRET_KEY"),
        "cipher_pass": secrets.get("BACKUPS_CIPHER_PASSPHRASE"),
    }


def _configs(major: int):
    data = host.data
    if data.backups_s3_ca_file:
        config_file(
            name="CA the off-site endpoint's certificate chains to",
            dest=CA_PATH,
            content=Path(data.backups_s3_ca_file).expanduser().read_text(),
        )
    s3 = _s3_settings(data)
    config_file(
        name="pgBackRest: local + encrypted off-site repository (secret)",
        dest="/etc/pgbackrest/pgbackrest.conf",
        user="postgres",
        group="postgres",
        mode="600",
        secret=True,
        content=render(
            "backups/etc/pgbackrest/pgbackrest.conf.j2",
            stanza=STANZA,
            queue_max=data.backups_archive_queue_max,
            local_repo=data.backups_local_repo,
            retention_days=data.backups_retention_days,
            data_directory=postgresql.data_dir(major),
            postgres_port=data.postgres_port,
            **s3,
        ),
        validate=config_validate_command(),
    )
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


def _archiving(major: int):
    """Stanza first, then archive_command: nothing is pushed to a repo that is not ready."""
    data = host.data
    restore_pending = bool(data.get("backups_restore_pending"))
    stanza = host.get_fact(PgbackrestStanza, stanza=STANZA)
    # 1: no stanza path, 3: stanza data missing (a new or wiped repository). Any other
    # error (credentials, network) is not fixed by stanza-create: the backup metrics and
    # their alerts report it, the converge goes on.
    missing = sorted(key for key, (code, _) in stanza.items() if code in (1, 3))
    broken = {key: msg for key, (code, msg) in stanza.items() if code not in (0, 1, 2, 3)}
    if broken:
        host.log(f"pgBackRest repositories in error (not changed here): {broken}", logger.warning)
    if restore_pending:
        host.noop("backups_restore_pending: no stanza-create, no archiving until restored")
    elif stanza and not missing and len(stanza) == 2:
        host.noop(f"stanza {STANZA} exists in both repositories")
    else:
        server.shell(
            name=f"pgBackRest stanza {STANZA} in both repositories",
            commands=[stanza_create_command()],
        )
    conf_path = f"{postgresql.config_dir(major)}/conf.d/91-galion-archiving.conf"
    # archive_mode needs a restart: a cluster this run creates may restart, a serving one
    # only when allowed (adding backups to a busy primary waits for a maintenance window).
    serving = postgresql.serving(host.get_fact(PostgresClusters), major)
    allow_restart = postgresql.restart_allowed(data) or not serving
    conf = config_file(
        name="PostgreSQL archives WAL through pgBackRest",
        dest=conf_path,
        user="postgres",
        group="postgres",
        content=render(
            "backups/etc/postgresql/91-galion-archiving.conf.j2",
            stanza=STANZA,
            archiving=not restore_pending,
            archive_timeout=data.backups_archive_timeout,
        ),
    )
    server.shell(
        name="Reload PostgreSQL for archiving (restart if archive_mode changed)",
        commands=[postgresql.reload_or_restart_command(major, allow_restart)],
        _if=conf.did_change,
    )


# The first full backup: a failure (off-site unreachable) is reported, not fatal; the
# backup metrics alert until a backup reaches both repositories.
def first_backup_command(repos: list[int]) -> str:
    """A full backup into each repository that holds none yet. A failure (off-site
    unreachable) is reported, not fatal; the backup metrics alert until one succeeds."""
    steps = [
        f"runuser -u postgres -- pgbackrest --stanza={STANZA} --repo={repo} --type=full backup "
        f"|| echo 'galion: the first full backup to repo{repo} failed; the next converge "
        "tries again' >&2"
        for repo in repos
    ]
    return "; ".join([*steps, "/usr/local/sbin/galion-backup-metrics || true"])


def _first_backup():
    """Point-in-time recovery starts at a full backup: take it in the first converge (as
    autobase and Pigsty do at deploy), not when the weekly timer first fires."""
    stanza = host.get_fact(PgbackrestStanza, stanza=STANZA)  # as before this run's changes
    if host.data.get("backups_restore_pending"):
        host.noop("backups_restore_pending: no backup of the empty cluster")
        return
    # 1, 3: stanza missing (created above); 2: no valid backup yet; absent: pgBackRest was
    # not installed yet. A repository in error (unreachable) is left to the timers.
    empty = [r for r in (1, 2) if r not in stanza or stanza[r][0] in (1, 2, 3)]
    if not empty:
        host.noop("both repositories hold a backup")
        return
    server.shell(
        name=f"First full backup to repo{' and repo'.join(map(str, empty))}",
        commands=[first_backup_command(empty)],
    )


def _canary():
    database = canary_database(host.data)
    rows = host.get_fact(
        PostgresQuery, database=database, sql="select to_regclass('ops.canary') is not null"
    )
    if rows == [["t"]]:
        host.noop("ops.canary exists")
        return
    postgres_sql(
        name=f"Canary table ops.canary in {database} (restore drills count its rows)",
        database=database,
        sql="CREATE SCHEMA IF NOT EXISTS ops AUTHORIZATION postgres;\n"
        "CREATE TABLE IF NOT EXISTS ops.canary (id bigserial PRIMARY KEY, "
        "written_at timestamptz NOT NULL DEFAULT now(), note text);\n",
    )


def _schedules():
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


@deploy("Backups")
def backups():
    major = postgresql.version(host.data, host.get_fact(OsRelease))
    _packages()
    _configs(major)
    _canary()
    _archiving(major)
    _first_backup()
    _schedules()
