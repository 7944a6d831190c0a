"""The hosts tests run against, read from a pyinfra inventory (same addresses, users, keys).

GALION_INVENTORY picks the inventory (default: the sandbox's). For the sandbox the
ssh config written by `python -m sandbox up` adds known_hosts and connection reuse.
"""

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import testinfra
from pyinfra.api import Config, State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from galion import connection

REPO = Path(__file__).resolve().parent.parent
INVENTORY = os.environ.get("GALION_INVENTORY", "inventories/sandbox.py")


@dataclass
class Node:
    name: str
    address: str
    user: str
    groups: frozenset
    data: dict
    host: "testinfra.host.Host"

    def __repr__(self):
        return self.name


def connection_reuse_config(directory: Path) -> Path:
    """An ssh_config that reuses one connection per host for the whole test run: the
    suite's hundreds of commands would otherwise trip UFW's SSH rate limit (6 new
    connections in 30 s) on the operator's own address. The operator's own config
    still applies (Include)."""
    path = directory / "ssh_config"
    path.write_text(
        "Include ~/.ssh/config\n"
        "Host *\n"
        "    ControlMaster auto\n"
        f"    ControlPath {directory}/cm-%C\n"
        "    ControlPersist 120s\n"
        "    BatchMode yes\n"
    )
    return path


def _ssh_config() -> str | None:
    if os.environ.get("GALION_SSH_CONFIG"):
        return os.environ["GALION_SSH_CONFIG"]
    if Path(INVENTORY).stem == "sandbox":
        from sandbox import state

        return state.load()["ssh_config"]
    return str(connection_reuse_config(Path(tempfile.mkdtemp(prefix="galion-ssh-"))))


@lru_cache(maxsize=1)
def nodes() -> tuple[Node, ...]:
    cwd = os.getcwd()
    os.chdir(REPO)  # group_data/ is looked up from the current directory
    try:
        state = State()
        ctx_state.set(state)  # the inventory loader expects a current pyinfra state
        inventory = make_inventory(INVENTORY, cwd=str(REPO))
        state.init(inventory, Config())
    finally:
        os.chdir(cwd)
    found = []
    ssh_config = _ssh_config()
    for h in inventory:
        data = h.data.dict()
        user = data.get("ssh_user") or "root"
        address = data.get("ssh_hostname") or h.name
        spec = f"ssh://{user}@{address}"
        spec += f":{connection.login_port(h.data)}"
        kwargs = {"sudo": user != "root"}
        if data.get("ssh_key"):
            kwargs["ssh_identity_file"] = str(Path(data["ssh_key"]).expanduser())
        if ssh_config:
            kwargs["ssh_config"] = ssh_config
        found.append(
            Node(
                h.name, address, user, frozenset(h.groups), data, testinfra.get_host(spec, **kwargs)
            )
        )
    return tuple(found)


def in_group(group: str) -> list[Node]:
    return [n for n in nodes() if group in n.groups]


def private_or_loopback(node: Node) -> str:
    """Where a host's data tier and exporters listen besides loopback: its private
    address in a fleet; on one box (no private address) loopback only."""
    return node.data.get("private_address") or "127.0.0.1"


def skip_unless_also_app(node: Node) -> None:
    """For checks that log in with an app's credentials, read from the app's environment
    file on the same host: on one box. In a fleet those files live on the app hosts, and
    tests/fleet logs in from there."""
    import pytest

    if "app" not in node.groups:
        pytest.skip("the apps' environment files are on the app hosts")
