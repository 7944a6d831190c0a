"""Check the inventory's data before any host is touched; stop with one line per problem.

Each problem names the host, the key and the fix. config.py runs `run_once()` between
loading the inventory and connecting, so bad data never reaches a server.

This module is the mechanism only: the check runner (the validators it runs are in
galion/validators.py). What to check comes from the declarations: each knob's own check
(`Knob`, see galion/role.py) in its role's module or, for the knobs several roles read,
in galion/shared_knobs.py; the roles' checks of several keys (`ROLE`); the host's
connection (HOST_CHECKS below). A knob set under a name the code no longer reads
stops the run with its new name (galion/knob_renames.py).
"""

import sys
from pathlib import Path

from . import secrets, shared_knobs
from .knob_renames import RENAMED
from .paths import REPO
from .role import checks as role_checks
from .role import knob_checks, known_groups
from .validators import Check, Problem, is_address_or_name, is_ip, run_checks

EXIT_CODE = 2

# --- keys of the host's connection (knobs are declared with their checks: galion/role.py)


# They have no default: the inventory gives each host its own.
HOST_CHECKS: list[Check] = [
    (
        "ssh_hostname",
        is_address_or_name,
        "is not an IP address or host name",
        "set it to the server's address in the inventory",
    ),
    (
        "private_address",
        lambda v: v is None or (isinstance(v, str) and is_ip(v)),
        "is not an IP address",
        "give the host's address on the private network, or leave it unset",
    ),
]

_UNSET = object()


def check_renamed(name: str, data) -> list[Problem]:
    """A knob set under a name the code no longer reads (galion/knob_renames.py)."""
    return [
        Problem(name, old, f"renamed to {new}", "rename it in your inventory")
        for old, new in RENAMED.items()
        if data.get(old, _UNSET) is not _UNSET
    ]


# --- the runner ---------------------------------------------------------------------------


def _inventory_names() -> set[str]:
    """pyinfra also puts every host in a group named after its inventory file."""
    names = {p.stem for p in (REPO / "inventories").glob("*.py")}
    names.update(Path(arg).stem for arg in sys.argv if arg.endswith(".py"))
    return names


def _check_groups(name: str, groups: set[str], roles) -> list[Problem]:
    known = known_groups(roles)
    problems = []
    allowed = set(known) | _inventory_names() | {"all"}
    for group in sorted(groups - allowed):
        problems.append(
            Problem(name, f"group {group}", "is not a role group", f"use one of {', '.join(known)}")
        )
    if not groups & set(known):
        problems.append(
            Problem(
                name,
                "groups",
                "the host is in no role group",
                f"add it to at least one of {', '.join(known)}",
            )
        )
    return problems


def _check_secrets(name: str, keys) -> list[Problem]:
    return [
        Problem(
            name,
            f"secret {key}",
            reason,
            f"set {key} in {secrets.env_file()} (see .env.example for how to generate it)",
        )
        for key in keys
        if (reason := secrets.problem(key))
    ]


def check_host(name: str, data, groups: set[str], roles) -> list[Problem]:
    """`roles`: the role modules (operations.ROLES); each declares `ROLE` (galion/role.py)."""
    problems = _check_groups(name, groups, roles) + check_renamed(name, data)
    problems.extend(run_checks(name, data, HOST_CHECKS + knob_checks(shared_knobs.KNOBS)))
    problems.extend(shared_knobs.check_host(name, data))
    for module in roles:
        role = module.ROLE
        if not role.runs_on(groups):
            continue
        problems.extend(run_checks(name, data, role_checks(module)))
        if role.check_host:
            problems.extend(role.check_host(name, data, groups))
        problems.extend(_check_secrets(name, role.required_secrets(data)))
    return problems


def check_topology(hosts: dict[str, set[str]], roles) -> list[Problem]:
    """Group combinations across the inventory. `hosts` maps host name to its groups."""
    problems = []
    for module in roles:
        if module.ROLE.check_inventory:
            problems.extend(module.ROLE.check_inventory(hosts))
    return problems


def check_private_addresses(hosts) -> list[Problem]:
    """Hosts talk to each other on their private addresses, given in data: in an
    inventory of several hosts a host without one would serve the data tier, the
    exporters and the apps on its public address, so there is no fallback."""
    if len(hosts) < 2:
        return []
    problems, seen = [], {}
    for h in hosts:
        address = h.data.get("private_address")
        if not address:
            problems.append(
                Problem(
                    h.name,
                    "private_address",
                    "is missing, in an inventory of several hosts",
                    "give the host's address on the private network (e.g. 10.0.0.2)",
                )
            )
        elif address in seen:
            problems.append(
                Problem(
                    h.name,
                    "private_address",
                    f"{address} is also {seen[address]}'s",
                    "give each host its own address on the private network",
                )
            )
        else:
            seen[address] = h.name
    return problems


def check(inventory, roles) -> list[Problem]:
    problems = []
    hosts = {}
    for host in inventory:
        groups = set(host.groups)
        hosts[host.name] = groups
        problems.extend(check_host(host.name, host.data, groups, roles))
    problems.extend(check_topology(hosts, roles))
    problems.extend(check_private_addresses(list(inventory)))
    # A knob several roles check (or a secret several roles need) is one problem.
    return list(dict.fromkeys(problems))


_checked: set[int] = set()


def run_once(inventory, roles) -> None:
    """`run()` once per inventory object (config.py before connecting, deploy.py after)."""
    if id(inventory) not in _checked:
        run(inventory, roles)
        _checked.add(id(inventory))


def run(inventory, roles) -> None:
    """Print every problem on one line each and exit 2, or return if the data is sound."""
    problems = check(inventory, roles)
    if problems:
        for problem in problems:
            print(problem.line(), file=sys.stderr, flush=True)
        sys.stderr.flush()
        raise SystemExit(EXIT_CODE)
