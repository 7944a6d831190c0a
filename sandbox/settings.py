"""Where the sandbox keeps things and which hosts a topology boots."""

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import operations

# Everything the sandbox makes on the machine carries this prefix, so `down` can find
# leftovers of a run that was killed even when its state file is gone. Two sandboxes can
# run at once with different prefixes, subnets and state directories (scripts/test.sh
# runs the fleet beside the single box so); each `down` removes only its own.
PREFIX = os.environ.get("GALION_SANDBOX_PREFIX", "gsbx")
if not re.fullmatch(r"[a-z]{2,6}", PREFIX):  # veth names: prefix + "-v240" <= 15 chars
    raise SystemExit(f"GALION_SANDBOX_PREFIX {PREFIX!r}: 2 to 6 lowercase letters")

# State, keys, throwaway secrets and host root file systems (root only, 0700).
STATE_DIR = Path(os.environ.get("GALION_SANDBOX_DIR", "/var/lib/galion-sandbox"))
# Base root file systems made by debootstrap, kept between runs: a second `up` copies.
CACHE_DIR = Path(os.environ.get("GALION_SANDBOX_CACHE", "/var/cache/galion-sandbox"))
# Private subnet of the sandbox bridge; the machine itself is .1 on it.
SUBNET = ipaddress.ip_network(os.environ.get("GALION_SANDBOX_SUBNET", "10.77.0.0/24"))
# Debian mirror the hosts install from (the one this machine's apt already uses).
MIRROR = os.environ.get("GALION_SANDBOX_MIRROR", "http://deb.debian.org/debian")
# CPU share of this sandbox's hosts against another one running at once (cgroup v1
# cpu.shares; the machine's default is 1024). Not used by scripts/test.sh yet
# (docs/TESTING.md, "Variables").
CPU_SHARES = int(os.environ.get("GALION_SANDBOX_CPU_SHARES", "1024"))
# Seconds to wait for a booted host to answer over SSH.
BOOT_TIMEOUT = int(os.environ.get("GALION_SANDBOX_BOOT_TIMEOUT", "120"))

BRIDGE = f"{PREFIX}-br0"
STATE_FILE = STATE_DIR / "state.json"
OPERATOR_KEY = STATE_DIR / "operator_ed25519"
KNOWN_HOSTS = STATE_DIR / "known_hosts"
SSH_CONFIG = STATE_DIR / "ssh_config"
SECRETS_ENV = STATE_DIR / "secrets.env"
HOSTS_DIR = STATE_DIR / "hosts"

DISTROS = ("bookworm", "trixie")


@dataclass(frozen=True)
class HostSpec:
    name: str
    host_index: int  # last octet offset: address is SUBNET[10 + host_index]
    groups: tuple = field(default_factory=tuple)


TOPOLOGIES = {
    # The all-in-one box of today: one host in the group of every role that fits on one
    # box (operations/<role>: ROLE.single_box), so a new role is booted and tested here.
    "single": (HostSpec("titanaxe", 1, operations.single_box_groups()),),
    # The scaling guide's split fleet (inventories/fleet.py has the same groups): an edge,
    # two app hosts, a PostgreSQL primary with its backups, a streaming replica and a
    # monitoring host.
    "fleet": (
        HostSpec("edge1", 1, ("edge",)),
        HostSpec("app1", 2, ("app",)),
        HostSpec("app2", 3, ("app",)),
        HostSpec("db1", 4, ("db", "backups")),
        HostSpec("db2", 5, ("db_replica",)),
        HostSpec("mon1", 6, ("monitoring",)),
    ),
}

# Where the tests listen, on the gateway, for Alertmanager's webhook (the sandbox's
# ALERTMANAGER_WEBHOOK_URL points here).
ALERT_WEBHOOK_PORT = 9099

# A bare network namespace (no systemd) that tests probe from: "another machine".
PROBE_NAME = "probe"
PROBE_INDEX = 240
# How many more addresses the probe has (.241, .242, ...).
PROBE_EXTRA = 4


def gateway_address() -> str:
    return str(SUBNET[1])


def host_address(index: int) -> str:
    return str(SUBNET[10 + index])


def host_index(address: str) -> int:
    """The index host_address() made `address` from."""
    return int(ipaddress.ip_address(address)) - int(SUBNET.network_address) - 10


def netns_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def veth_name(index: int) -> str:
    # Interface names are limited to 15 characters: use the index, not the host name.
    return f"{PREFIX}-v{index}"
