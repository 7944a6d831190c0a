"""The restores an operator asks for, run by actions/restore.py: each keeps a copy of
what it replaces."""

import re
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from galion.paths import SCRIPTS_DIR

MODES = ("latest", "time", "database")
SYSTEM_IDENTIFIER = re.compile(r"[0-9]+")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:?\d{2})?|Z)$")


class RestoreRequestError(ValueError):
    pass


def command(data) -> str:
    """The galion-restore call for `--data restore=...`; a clear error if the request is wrong."""
    mode = data.get("restore")
    if mode not in MODES:
        raise RestoreRequestError(f"restore={mode!r}: use one of {', '.join(MODES)}")
    repo = str(data.get("restore_repo", "2"))
    if repo not in ("1", "2"):
        raise RestoreRequestError(f"restore_repo={repo!r}: 1 (local) or 2 (off-site)")
    if mode == "latest":
        return f"{SCRIPTS_DIR}/galion-restore cluster --repo {repo}"
    if mode == "time":
        target = str(data.get("restore_target", ""))
        if not TIME.match(target):
            raise RestoreRequestError(
                f"restore_target={target!r}: give a time with its offset, "
                "e.g. '2026-11-22 03:00:00+00'"
            )
        return f"{SCRIPTS_DIR}/galion-restore cluster --repo {repo} --target {shlex.quote(target)}"
    database = data.get("restore_database")
    names = [db["name"] for db in data.get("postgres_databases") or []]
    if database not in names:
        raise RestoreRequestError(f"restore_database={database!r}: one of {', '.join(names)}")
    source = data.get("restore_from", "local")
    if source not in ("local", "offsite"):
        raise RestoreRequestError(f"restore_from={source!r}: local or offsite")
    cluster = str(data.get("restore_dump_cluster", ""))
    if not cluster:
        return f"{SCRIPTS_DIR}/galion-restore database {database} --from {source}"
    if not SYSTEM_IDENTIFIER.fullmatch(cluster):
        raise RestoreRequestError(
            f"restore_dump_cluster={cluster!r}: a PostgreSQL system identifier (digits only)"
        )
    if source != "offsite":
        raise RestoreRequestError("restore_dump_cluster picks off-site dumps: restore_from=offsite")
    return f"{SCRIPTS_DIR}/galion-restore database {database} --from offsite --cluster {cluster}"


@deploy("Restore")
def restore():
    server.shell(
        name=f"Restore ({host.data.get('restore')}), keeping a safety copy",
        commands=[command(host.data)],
    )
