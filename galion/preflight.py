"""Check the inventory's data before any host is touched; stop with one line per problem.

Each problem names the host, the key and the fix. config.py runs `run_once()` between
loading the inventory and connecting, so bad data never reaches a server.

This module is the mechanism only: the check runner and the validators roles share.
What to check comes from the declarations: each knob's own check (`Knob`, see
galion/role.py) in its role's module or, for the knobs several roles read, in
galion/shared_knobs.py; the roles' checks of several keys (`ROLE`); the host's
connection (HOST_CHECKS below). A knob set under a name the code no longer reads
stops the run with its new name (galion/knob_renames.py).
"""

import ipaddress
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import secrets
from .knob_renames import RENAMED
from .paths import REPO
from .role import checks as role_checks
from .role import knob_checks, known_groups

EXIT_CODE = 2

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DURATION = re.compile(r"^\d+[smhdw]?$")
SIZE = re.compile(r"^\d+[KMGT]?$")
PORT_PROTO = re.compile(r"^(\d{1,5})(:\d{1,5})?/(tcp|udp)$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Problem(NamedTuple):
    host: str
    key: str
    message: str
    fix: str

    def line(self) -> str:
        return f"preflight: {self.host}: {self.key}: {self.message} (fix: {self.fix})"


# (key, check, what is wrong, how to fix). A check gets the value, returns True if fine.
Check = tuple[str, Callable[[object], bool], str, str]


# --- shared validators: each returns True if the value is fine, and says what is wrong
# otherwise (`problem`, the text a Knob prints unless it gives its own) ----------------


def says(problem: str) -> Callable[[Callable], Callable]:
    """Give a validator the text preflight prints after a value it refuses."""

    def mark(check: Callable) -> Callable:
        check.problem = problem
        return check

    return mark


@says("is not an address with its prefix (e.g. 172.19.0.1/24)")
def is_interface(value) -> bool:
    """An address with its prefix, e.g. 172.19.0.1/24 (not the network address)."""
    try:
        iface = ipaddress.ip_interface(value)
    except (ValueError, TypeError):
        return False
    return "/" in str(value) and iface.ip != iface.network.network_address


@says("is not a list of addresses or CIDRs")
def is_networks(value) -> bool:
    """A list of networks or single addresses (e.g. ["10.0.0.0/24", "192.0.2.1"])."""
    try:
        return isinstance(value, list) and all(
            ipaddress.ip_network(str(c), strict=False) for c in value
        )
    except (TypeError, ValueError):
        return False


@says("is not an IP address")
def is_ip(value) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


@says("is not an IP address or host name")
def is_address_or_name(value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if is_ip(value):
        return True
    return bool(HOSTNAME.match(value)) and not re.match(r"^[\d.]+$", value)


@says("is not a TCP port")
def is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def int_between(low: int, high: int) -> Callable[[object], bool]:
    return says(f"is not between {low} and {high}")(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
    )


def matches(pattern: re.Pattern) -> Callable[[object], bool]:
    return says(f"does not match {pattern.pattern}")(
        lambda v: isinstance(v, str) and bool(pattern.match(v))
    )


@says("is not host:port")
def is_host_port(value) -> bool:
    """`host:port` with a valid host name or address and port."""
    if not isinstance(value, str):
        return False
    parts = split_host_port(value)
    return parts is not None and is_address_or_name(parts[0]) and is_port(parts[1])


def split_host_port(value: str) -> tuple[str, int] | None:
    """("smtp.example.com", 587) from "smtp.example.com:587"; None if it is not that shape."""
    name, sep, port = value.rpartition(":")
    if not sep or not name or not port.isdigit():
        return None
    return name, int(port)


@says("is not a readable file")
def is_readable_file_or_none(value) -> bool:
    return value is None or Path(str(value)).expanduser().is_file()


@says("is not PORT/tcp or LOW:HIGH/udp")
def is_port_proto(value) -> bool:
    """True if `value` is 'PORT/tcp' or 'LOW:HIGH/udp' with ports in range."""
    return (
        isinstance(value, str)
        and bool(PORT_PROTO.match(value))
        and all(1 <= int(x) <= 65535 for x in re.findall(r"\d+", value))
    )


def in_group(hosts: dict[str, set[str]], group: str) -> list[str]:
    """Names of the inventory's hosts in one group, sorted (for topology checks)."""
    return sorted(h for h, groups in hosts.items() if group in groups)


def needs_group(
    hosts: dict[str, set[str]], group: str, needed: str, message: str, fix: str
) -> list[Problem]:
    """A problem if the inventory has hosts in `group` but none in `needed`."""
    members = in_group(hosts, group)
    if members and not in_group(hosts, needed):
        return [Problem(",".join(members), f"group {group}", message, fix)]
    return []


def run_checks(name: str, data, checks) -> list[Problem]:
    problems = []
    for key, ok, message, fix in checks:
        value = data.get(key)
        try:
            fine = ok(value)
        except (TypeError, ValueError):
            fine = False
        if not fine:
            problems.append(Problem(name, key, f"{value!r} {message}", fix))
    return problems


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
    from . import shared_knobs  # declared with this module's validators: imported late

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
