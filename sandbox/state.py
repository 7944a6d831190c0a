"""The sandbox's state file: what `up` made, read by inventories/sandbox.py and the tests."""

import json
from pathlib import Path

from . import settings


class SandboxNotUp(RuntimeError):
    pass


def load(path: Path = settings.STATE_FILE) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SandboxNotUp(
            f"no sandbox state at {path}: run `python -m sandbox up` first"
        ) from None


def save(state: dict, path: Path = settings.STATE_FILE) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.rename(path)


def regroup(groups: dict[str, list[str]], path: Path = settings.STATE_FILE) -> dict:
    """Give hosts other inventory groups ({host: groups}), as an operator edits the
    inventory (a failover swaps the primary and the replica); returns the old ones."""
    state = load(path)
    before = {}
    for h in state["hosts"]:
        if h["name"] in groups:
            before[h["name"]] = h["groups"]
            h["groups"] = list(groups[h["name"]])
    save(state, path)
    return before


def ssh_options() -> list[str]:
    """ssh options that reach sandbox hosts (fresh host keys at every `up`)."""
    return ["-F", str(settings.SSH_CONFIG)]


def write_ssh_config() -> None:
    settings.SSH_CONFIG.write_text(
        f"Host {settings.SUBNET.network_address.exploded.rsplit('.', 1)[0]}.*\n"
        f"    IdentityFile {settings.OPERATOR_KEY}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {settings.KNOWN_HOSTS}\n"
        "    StrictHostKeyChecking accept-new\n"
        "    ConnectTimeout 5\n"
        "    BatchMode yes\n"
        "    LogLevel ERROR\n"
        "    ControlMaster auto\n"
        f"    ControlPath {settings.STATE_DIR}/cm-%r@%h:%p\n"
        "    ControlPersist 60s\n"
    )
