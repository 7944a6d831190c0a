# Fail over to a streaming replica (the steps: actions/failover_steps.py; docs/FLEET.md,
# "Failover").
# First edit the inventory: the replica to promote into group `db` (and `backups`), the
# old primary into `db_replica`. Then:
#
#   pyinfra INVENTORY actions/failover.py                                     # fail over
#   pyinfra INVENTORY actions/failover.py --data postgres_failover_force=true # accept the loss
#
# It reports what the promotion would lose and refuses, changing nothing, when the
# replica has not received more than postgres_failover_max_lag_bytes of the old
# primary's WAL, or when the old primary is out of reach (the loss cannot be measured).
# The old primary is fenced (stopped, masked, marked) until the next `deploy.py`, which
# rejoins it as a replica of the new primary with pg_rewind.
#
# Run from the repository root, as deploy.py: pyinfra puts the current directory on
# sys.path (not this file's folder), so `actions`, `operations` and `galion` import from
# there, and config.py and group_data/ are found there too.

import sys

from pyinfra import inventory

import operations
from actions.failover_steps import FailoverRequestError, failover, plan
from galion import preflight

preflight.run_once(inventory, operations.ROLES)

try:
    plan()
except FailoverRequestError as exc:
    print(f"failover: {exc}", file=sys.stderr)
    raise SystemExit(2)
failover()
