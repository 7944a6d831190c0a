"""Roles: one module each, each with one @deploy entry point named like the module.

ROLES says which inventory group runs which role, in order; deploy.py applies it and
preflight asks each role which secrets its hosts need.
"""

from . import app_env, backups, base, nginx_tls, postgres, redis

# (inventory group, role module); None = every host. Base hardening runs first.
ROLES = [
    (None, base),
    ("db", postgres),
    ("db", redis),
    ("backups", backups),
    ("app", app_env),
    ("edge", nginx_tls),
]


def for_host(groups) -> list:
    """The role entry points a host with these groups runs, in order."""
    return [getattr(module, module.__name__.rsplit(".", 1)[-1])
            for group, module in ROLES if group is None or group in groups]

