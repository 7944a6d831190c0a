# Restore PostgreSQL on the backups hosts of an inventory (docs/DISASTER_RECOVERY.md).
# Whatever a restore replaces is kept (data directory or database renamed), never deleted.
#
#   pyinfra INVENTORY actions/restore.py --data restore=latest [--data restore_repo=1]
#   pyinfra INVENTORY actions/restore.py --data restore=time \
#       --data restore_target='2026-11-22 03:00:00+00'
#   pyinfra INVENTORY actions/restore.py --data restore=database --data restore_database=galion \
#       [--data restore_from=offsite [--data restore_dump_cluster=7312345678901234567]]
#
# Run from the repository root (pyinfra imports `actions` from the current directory).
# The steps: actions/restore_steps.py.
#
# restore_repo: 2 (off-site, the default: survives the server) or 1 (local, faster).
# restore_dump_cluster: whose off-site dumps (a PostgreSQL system identifier); by default
#   this cluster's own. Another's after a server loss, when the new cluster was initialised
#   empty: without one for this cluster, the restore lists the identifiers that have dumps.

import sys

from pyinfra import host

from actions.restore_steps import RestoreRequestError, command, restore

if "backups" in host.groups:
    try:
        command(host.data)
    except RestoreRequestError as exc:
        print(f"restore: {exc}", file=sys.stderr)
        raise SystemExit(2)
    restore()
