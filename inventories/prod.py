# Production: TITANAXE, the all-in-one box (Ubuntu 24.04, 16 GB). Edit this file.
#
# First run on a fresh box (only root can log in yet):
#     pyinfra inventories/prod.py deploy.py --data ssh_user=root
# Every later run (root login is switched off once the deploy user has logged in):
#     pyinfra inventories/prod.py deploy.py
# Restores (docs/DISASTER_RECOVERY.md):
#     pyinfra inventories/prod.py actions/restore.py --data restore=latest
#
# Groups name functions, not machines: put a host in every group whose role it runs.
# Splitting the fleet later means new hosts in these groups, not new code. The groups
# are those the roles declare (operations/<role>: ROLE.groups); `monitoring` comes
# with its role (step 8).

_titanaxe = (
    "titanaxe",
    {
        "ssh_hostname": "54.37.161.67",
        "ssh_user": "deploy",
        "ssh_key": "~/.ssh/id_ed25519",
        "_sudo": True,
        # Pinned: an OS upgrade that brings another PostgreSQL major must not start an empty
        # new cluster beside the data (upgrade with pg_upgradecluster, then change this).
        "postgres_version": 16,
        # PostgreSQL's share of the 16 GB box, fixed here rather than read from MemTotal.
        # The apps' limits (6 GB), Redis (2 GB) and the OS reserve (1.5 GB) must fit
        # beside it: the apps role refuses a plan that exceeds the RAM.
        "postgres_memory_budget_mb": 6144,
        # Keys allowed to log in as the deploy user: a public key, or a path to a .pub file.
        "base_deploy_authorized_keys": ["~/.ssh/id_ed25519.pub"],
        # Nothing on the box can report its own death: the dead man's switch outside it
        # (ALERTMANAGER_HEARTBEAT_URL; preflight refuses the run without it). Turn it off
        # only on purpose.
        "monitoring_heartbeat_enabled": True,
    },
)

app = [_titanaxe]
db = [_titanaxe]
edge = [_titanaxe]
backups = [_titanaxe]
# Prometheus and Alertmanager on the box itself (the plan's 1 GB share); a host of its
# own later (docs/SCALING.md).
monitoring = [_titanaxe]
