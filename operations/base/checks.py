"""Preflight checks of base's knobs that look further than one value (galion/role.py)."""

import re

from galion import keys
from galion.validators import Problem, is_port, is_port_proto

from .users import authorized_keys

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_host(name: str, data, groups) -> list[Problem]:
    return check_login_port(name, data) + check_keys(name, data, groups)


def check_login_port(name: str, data) -> list[Problem]:
    """pyinfra's own ssh_port (set only while moving SSH): a port, if given."""
    port = data.get("ssh_port")
    if port is None or is_port(port):
        return []
    fix = "leave it unset (pyinfra uses base_ssh_port), or the port sshd listens on today"
    return [Problem(name, "ssh_port", f"{port!r} is not a TCP port (1-65535)", fix)]


def check_keys(name: str, data, groups) -> list[Problem]:
    entries = data.get("base_deploy_authorized_keys")
    if not isinstance(entries, list) or not entries:
        return [
            Problem(
                name,
                "base_deploy_authorized_keys",
                "is empty",
                "list the operator's public key or its .pub file",
            )
        ]
    problems = []
    for entry in entries:
        reason = keys.entry_problem(entry)
        if reason:
            problems.append(
                Problem(
                    name,
                    "base_deploy_authorized_keys",
                    reason,
                    "give `ssh-ed25519 AAAA...` or a path to a .pub file",
                )
            )
    if problems:
        return problems
    # The list replaces the deploy user's keys: without the key this run logs in with,
    # the run would succeed and lock its operator out for good.
    login = keys.login_key_blob(data.get("ssh_key")) if data.get("ssh_key") else None
    if login and login not in {keys.blob(line) for line in authorized_keys(data)}:
        problems.append(
            Problem(
                name,
                "base_deploy_authorized_keys",
                f"lacks the key this run logs in with ({data.get('ssh_key')}): the converge would "
                "lock you out",
                f"add {data.get('ssh_key')}.pub to the list (keep it while you "
                "still log in with that key)",
            )
        )
    return problems


def firewall_ports_ok(value) -> bool:
    from operations import known_groups  # the groups are known once every role is loaded

    groups = set(known_groups())
    return isinstance(value, dict) and all(
        g in groups and isinstance(ports, list) and all(is_port_proto(p) for p in ports)
        for g, ports in value.items()
    )
