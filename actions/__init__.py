"""Operator actions: each `actions/<name>.py` is a pyinfra deploy file an operator runs
from the repository root (`pyinfra INVENTORY actions/failover.py`); its logic is in
`actions/<name>_steps.py`, which the unit tests import. Not roles: nothing here runs in
a converge (deploy.py)."""
