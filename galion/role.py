"""The role contract: what a role module declares beside its @deploy entry point.

A role is a module `operations/<name>.py`, or a package `operations/<name>/` (one
concern per module) whose `__init__.py` holds what follows; either way it has

- `KNOBS = {"<name>_...": Knob(default, doc, check=..., problem=..., fix=...)}`: its
  own knobs, each declared once (the role's "meta/argument_specs.yml"): the default,
  the one-line doc (docs/KNOBS.md), the preflight check and its fix text all come
  from that one declaration; every name starts with one of the role's prefixes. The
  defaults reach every host through group_data/all.py, below any value the inventory
  sets;
- `ROLE = Role(...)`: where it runs and what preflight checks for it beyond single
  knobs (below);
- `@deploy def <name>()`: the entry point, named like the role;
- its templates under `templates/<name>/`, its static files under `files/<name>/`.

operations/__init__.py finds every such module or package: the converge order, the known
inventory groups, preflight, the required secrets and the sandbox's groups all follow
from these declarations, so adding a role touches only its own files. Knobs that more
than one role reads are declared the same way in galion/shared_knobs.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # preflight runs the checks declared here; only their types are used
    from .validators import Check, Problem


def _no_secrets(data) -> list[str]:
    return []


@dataclass(frozen=True)
class Knob:
    """One knob: everything preflight, the docs and the hosts know about it."""

    default: object
    # One line for docs/KNOBS.md: what the knob is (a longer "why" stays a comment).
    doc: str
    # Gets the value, returns True if fine; None: any value goes.
    check: Callable[[object], bool] | None = None
    # What is wrong with a value the check refuses; None: the check's own text
    # (galion/validators.py: `says`).
    problem: str | None = None
    # How to fix it; "{default}" stands for the default as an inventory writes it.
    fix: str = "use {default}"

    def problem_text(self) -> str:
        return self.problem or getattr(self.check, "problem", "is not valid")

    def fix_text(self) -> str:
        return self.fix.replace("{default}", repr(self.default))


def defaults(knobs: dict) -> dict:
    """{name: default} of a KNOBS dict: what group_data/all.py gives every host."""
    return {name: knob.default for name, knob in knobs.items()}


def knob_checks(knobs: dict) -> list[Check]:
    """Preflight's rows for the declared knobs that have a check."""
    return [
        (name, k.check, k.problem_text(), k.fix_text())
        for name, k in knobs.items()
        if k.check is not None
    ]


@dataclass(frozen=True)
class Role:
    # Inventory groups whose hosts run the role; () = every host.
    groups: tuple[str, ...]
    # Place in a converge, lowest first (base hardening 10, data tier 20-30, ...).
    order: int
    # Prefixes of its knobs' names: a knob's prefix says which role reads it.
    knob_prefixes: tuple[str, ...]
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

    def runs_on(self, groups: Iterable[str]) -> bool:
        """Whether a host in these groups runs the role."""
        return not self.groups or bool(set(groups) & set(self.groups + self.fleet_groups))

    def named_groups(self) -> tuple[str, ...]:
        """Every group that means something to the role: where it runs or looks."""
        return self.groups + self.fleet_groups + self.peer_groups


def known_groups(roles) -> list[str]:
    """The inventory groups that mean something to any of the role modules."""
    return sorted({g for module in roles for g in module.ROLE.named_groups()})


def checks(module) -> list[Check]:
    """Preflight's rows for one role module's knobs, from its `Knob`s."""
    return knob_checks(module.KNOBS)
