"""PostgreSQL archives its WAL through pgBackRest (archive_timeout bounds the data a
dead disk takes with it); off while a restore is pending."""

from pyinfra import host
from pyinfra.operations import server

from galion import postgresql
from galion.facts.postgres import PostgresClusters
from galion.ops import config_file, render

from .repository import STANZA


def archive_wal(major: int):
    data = host.data
    restore_pending = bool(data.get("backups_restore_pending"))
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
