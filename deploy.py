# Converge every host of an inventory: each host gets the roles of its groups
# (operations/<role>: ROLE.groups, in ROLE.order).
#
#     pyinfra inventories/prod.py deploy.py --dry --diff   # what would change
#     pyinfra inventories/prod.py deploy.py                # converge
#
# The data is checked before connecting (config.py -> galion/preflight.py): a bad value
# stops the run with one line naming the key and the fix. The call below repeats the
# check if pyinfra was started with another config file.

from pyinfra import host, inventory

import operations
from galion import preflight

preflight.run_once(inventory, operations.ROLES)

for role in operations.for_host(host.groups, operations.ROLES):
    role()
