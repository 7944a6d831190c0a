"""Sysctl values applied live where the host allows it."""

from pyinfra import host, logger
from pyinfra.api import StringCommand, operation

from ..facts.system import SysctlState


@operation()
def sysctl_values(values: dict[str, str | int]):
    """
    Apply sysctl values live where the host allows it (the sysctl.d file makes them stick).

    Keys this host may not write (a container's kernel.*, vm.*, fs.*) are reported and
    skipped, not failed: their file stays in place for a real machine.

    + values: ``{key: value}``

    **Example:**

    .. code:: python

        sysctl_values(name="Apply sysctl values", values={"vm.swappiness": 10})
    """
    current = host.get_fact(SysctlState, keys=sorted(values))
    commands, skipped = sysctl_commands(values, current)
    yield from commands
    if skipped:
        host.log("sysctl skipped on this host: " + "; ".join(skipped), logger.warning)


def sysctl_commands(
    values: dict[str, str | int], current: dict[str, dict]
) -> tuple[list[StringCommand], list[str]]:
    """`sysctl -w` for each key that differs and is writable; the others, with the reason."""
    commands, skipped = [], []
    for key, value in sorted(values.items()):
        want = " ".join(str(value).split())
        have = current.get(key, {})
        if have.get("value") == want:
            continue
        if have.get("value") is None:
            skipped.append(f"{key} (absent)")
        elif not have.get("writable"):
            skipped.append(f"{key} (read-only here: {have['value']}, wanted {want})")
        else:
            commands.append(StringCommand("sysctl", "-q", "-w", f"{key}={want}"))
    return commands, skipped
