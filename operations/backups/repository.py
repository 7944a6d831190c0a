"""pgBackRest's two repositories (local, and encrypted off-site on S3): its config
(checked by pgBackRest before it goes live), the stanza, the first full backup."""

from pathlib import Path

from pyinfra import host, logger
from pyinfra.operations import server

from galion import postgresql, secrets
from galion.facts.pgbackrest import PgbackrestStanza
from galion.ops import config_file, render
from galion.paths import SCRIPTS_DIR

STANZA = "main"
CA_PATH = "/etc/pgbackrest/s3-ca.crt"


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


def stanza_create_command() -> str:
    """The async archiver holds the archive lock while it retries a missing repo: wait for
    a turn on that error (pgBackRest's [050]) only; any other error fails at once."""
    return (
        "for _ in $(seq 1 30); do out=$(runuser -u postgres -- timeout 300 pgbackrest "
        f"--stanza={STANZA} --log-level-console=warn stanza-create 2>&1) && exit 0; "
        'case "$out" in *"[050]"*|*"acquire lock"*) sleep 2 ;; '
        '*) echo "$out" >&2; exit 1 ;; esac; done; echo "$out" >&2; exit 1'
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
    return "; ".join([*steps, f"{SCRIPTS_DIR}/galion-backup-metrics || true"])


def s3_settings(data) -> dict:
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


def configure(major: int):
    """The CA of the off-site endpoint (if given) and pgbackrest.conf (secret)."""
    data = host.data
    if data.backups_s3_ca_file:
        config_file(
            name="CA the off-site endpoint's certificate chains to",
            dest=CA_PATH,
            content=Path(data.backups_s3_ca_file).expanduser().read_text(),
        )
    s3 = s3_settings(data)
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


def create_stanza():
    """The stanza in each repository that lacks it, unless a restore is pending."""
    stanza = host.get_fact(PgbackrestStanza, stanza=STANZA)
    # 1: no stanza path, 3: stanza data missing (a new or wiped repository). Any other
    # error (credentials, network) is not fixed by stanza-create: the backup metrics and
    # their alerts report it, the converge goes on.
    missing = sorted(key for key, (code, _) in stanza.items() if code in (1, 3))
    broken = {key: msg for key, (code, msg) in stanza.items() if code not in (0, 1, 2, 3)}
    if broken:
        host.log(f"pgBackRest repositories in error (not changed here): {broken}", logger.warning)
    if host.data.get("backups_restore_pending"):
        host.noop("backups_restore_pending: no stanza-create, no archiving until restored")
    elif stanza and not missing and len(stanza) == 2:
        host.noop(f"stanza {STANZA} exists in both repositories")
    else:
        server.shell(
            name=f"pgBackRest stanza {STANZA} in both repositories",
            commands=[stanza_create_command()],
        )


def first_backup():
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
