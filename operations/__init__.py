"""Roles: a module `operations/<role>.py` or a package `operations/<role>/` each, found
here by what it declares.

A module, or a package's `__init__.py`, with a `ROLE` (galion/role.py) is a role:
deploy.py runs, per host, the roles of its groups in `ROLE.order`; preflight asks each
role for its checks and secrets; group_data/all.py gives every host the defaults of the
roles' `KNOBS`. Everything here is a role: operator actions and their steps live in
actions/.
"""

import importlib
import pkgutil

from galion import role


def discover(package=None) -> list:
    """Every role (module or package) of the package (this one by default), in converge
    order."""
    package = package or importlib.import_module(__name__)
    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "ROLE"):
            modules.append(module)
    return sorted(modules, key=lambda m: (m.ROLE.order, m.__name__))


def name(module) -> str:
    return module.__name__.rsplit(".", 1)[-1]


def entry_point(module):
    """The role's @deploy function, named like the role."""
    return getattr(module, name(module))


def known_groups(roles=None) -> list[str]:
    """The inventory groups that mean something: where roles run or look for peers."""
    return role.known_groups(discover() if roles is None else roles)


def single_box_groups(roles=None) -> tuple[str, ...]:
    """The groups of the all-in-one box: every group a role that fits on it runs on."""
    roles = discover() if roles is None else roles
    return tuple(sorted({g for m in roles if m.ROLE.single_box for g in m.ROLE.groups}))


def knobs(roles=None) -> dict:
    """Every role's knobs with their defaults, {name: default} (group_data/all.py hands
    them to all hosts)."""
    roles = discover() if roles is None else roles
    merged: dict = {}
    for module in roles:
        clash = merged.keys() & module.KNOBS.keys()
        if clash:
            raise ValueError(f"{name(module)} redefines knobs of another role: {sorted(clash)}")
        merged.update(role.defaults(module.KNOBS))
    return merged


def for_host(groups, roles=None) -> list:
    """The role entry points a host with these groups runs, in order."""
    roles = discover() if roles is None else roles
    return [entry_point(m) for m in roles if m.ROLE.runs_on(groups)]


ROLES = discover()
