"""The role contract: what a role module declares beside its @deploy entry point.

A role is one module `operations/<name>.py` with

- `KNOBS`: its own knobs with their defaults, a comment above each (the role's
  "defaults/main.yml"); every name starts with one of the role's prefixes. They reach
  every host through group_data/all.py, below any value the inventory sets;
- `ROLE = Role(...)`: where it runs and what preflight checks for it (below);
- `@deploy def <name>()`: the entry point, named like the module;
- its templates under `templates/<name>/`, its static files under `files/<name>/`.

operations/__init__.py finds every such module: the converge order, the known
inventory groups, preflight, the required secrets and the sandbox's groups all follow
from these declarations, so adding a role touches only its own files. Knobs that more
than one role reads live in group_data/all.py instead, checked by galion/preflight.py.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .preflight import Check, Problem


def _no_secrets(data) -> list[str]:
    return []


@dataclass(frozen=True)
class Role:
    # Inventory groups whose hosts run the role; () = every host.
    groups: tuple[str, ...]
    # Place in a converge, lowest first (base hardening 10, data tier 20-30, ...).
    order: int
    # Prefixes of its knobs' names: a knob's prefix says which role reads it.
    knob_prefixes: tuple[str, ...]
    # Preflight rows for its knobs: (key, check, what is wrong, how to fix).
    checks: tuple[Check, ...] = ()
    # Checks that look at several keys or at the host's groups: (host, data, groups).
    check_host: Callable[[str, object, set[str]], list[Problem]] | None = None
    # Checks of the whole inventory's groups: ({host name: groups}) -> problems.
    check_inventory: Callable[[dict[str, set[str]]], list[Problem]] | None = None
    # The .env keys its hosts need, from the host's data.
    required_secrets: Callable[[object], list[str]] = _no_secrets
    # Groups it reads other hosts from without running on them (pg_hba's app hosts).
    peer_groups: tuple[str, ...] = ()
    # Groups it also runs on that only a split fleet has (PostgreSQL's replicas): not
    # part of the all-in-one box.
    fleet_groups: tuple[str, ...] = ()
    # Runs on the all-in-one box; False for a role that needs a host of its own.
    single_box: bool = True
