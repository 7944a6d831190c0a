"""What a value must be, for preflight (galion/preflight.py runs them): the validators
knob declarations name (`Knob(check=...)`, galion/role.py), the problem a check reports,
and the helpers of roles' own checks of several keys or groups.

Each validator returns True if the value is fine and says what is wrong otherwise
(`says`: the text a Knob prints unless it gives its own)."""

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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


# --- validators --------------------------------------------------------------------------


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
