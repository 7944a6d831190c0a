"""Facts of the machine itself: kernel settings, memory, virtualization, systemd units,
the programs on PATH."""

import shlex
from typing import Any, ClassVar

from pyinfra import host

from ._base import _Fact, _first_line, _normalise


class SysctlState(_Fact):
    """Current value of each sysctl key and whether this host may write it.

    In a container (LXC, OpenVZ, the sandbox's nspawn hosts) `kernel.*`, `vm.*` and
    `fs.*` are the machine's and read-only; only `net.*` belongs to the host.
    Returns ``{key: {"value": str | None, "writable": bool}}``.
    """

    def command(self, keys):
        names = " ".join(keys)
        return (
            f"for k in {names}; do p=/proc/sys/$(echo $k | tr . /); "
            'if [ -r "$p" ]; then w=0; [ -w "$p" ] && w=1; '
            'printf "%s\\t%s\\t%s\\n" "$k" "$w" "$(tr "\\t" " " < "$p")"; '
            'else printf "%s\\t-\\t\\n" "$k"; fi; done'
        )

    def process(self, output):
        state = {}
        for line in output:
            key, writable, *value = line.split("\t")
            state[key] = {
                "value": _normalise(value[0]) if writable != "-" else None,
                "writable": writable == "1",
            }
        return state


class MemoryTotalMb(_Fact):
    """MemTotal from /proc/meminfo, in MB (no procps needed)."""

    def command(self):
        return "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output):
        return int(output[0])


class ContainerVirtualization(_Fact):
    """`systemd-detect-virt --container`: "none" on a VM or bare metal, else the container kind."""

    def command(self):
        return "systemd-detect-virt --container 2>/dev/null || true"

    def process(self, output):
        return _first_line(output) or "none"


def in_container() -> bool:
    """Whether the current host is a container (its kernel.*, vm.*, fs.* are not its own)."""
    return host.get_fact(ContainerVirtualization) != "none"


class SystemdUnitEnabled(_Fact):
    """`systemctl is-enabled` of one unit: "enabled", "disabled", "masked", ... or "missing"."""

    def command(self, unit):
        return f"systemctl is-enabled {unit} 2>/dev/null || true"

    def process(self, output):
        return _first_line(output) or "missing"


class ToolModes(_Fact):
    """The real file behind each command name found in PATH and its mode, e.g.
    ``{"/usr/bin/x86_64-linux-gnu-as": "755"}`` (names not installed are left out)."""

    default_value: ClassVar[Any] = {}

    def command(self, names):
        listed = " ".join(shlex.quote(n) for n in names)
        return (
            f'for n in {listed}; do p=$(command -v "$n") || continue; '
            'stat -L -c "%a %n" "$(readlink -f "$p")"; done | sort -u'
        )

    def process(self, output):
        return parse_tool_modes(output)


def parse_tool_modes(output) -> dict[str, str]:
    modes = {}
    for line in output:
        mode, _, path = line.strip().partition(" ")
        if path:
            modes[path] = mode
    return modes
