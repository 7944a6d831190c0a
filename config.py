# pyinfra reads this file (from the repository root) before the inventory.
#
# It puts the preflight data checks (galion/preflight.py) between loading the inventory
# and connecting: bad data stops the run before any SSH connection, so a wrong key or
# address never reaches a server (nor trips its fail2ban).

import pyinfra_cli.cli as _cli

from galion import connection as _connection
from galion import fact_memo as _fact_memo
from galion import preflight as _preflight
from operations import ROLES as _ROLES

_connect_all = _cli.connect_all


def _preflight_then_connect(state):
    _preflight.run_once(state.inventory, _ROLES)
    # pyinfra connects on the port sshd is configured for, unless the run says otherwise.
    _connection.follow_ssh_port(state.inventory)
    return _connect_all(state)


_cli.connect_all = _preflight_then_connect

# Each distinct fact is asked once until the host changes, and right after connecting
# last run's facts are asked in a few batches (galion/fact_memo.py).
_fact_memo.install()
