"""galion.facts.system: kernel settings, memory, virtualization, systemd units, tools on PATH.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

import pytest

from galion.facts import system
from tests.unit.fact_coverage import covers


@covers(system.SysctlState)
class TestSysctlState:
    def test_command(self):
        assert system.SysctlState().command(["net.ipv4.ip_forward", "kernel.pid_max"]) == (
            "for k in net.ipv4.ip_forward kernel.pid_max; do p=/proc/sys/$(echo $k | tr . /); "
            'if [ -r "$p" ]; then w=0; [ -w "$p" ] && w=1; '
            'printf "%s\\t%s\\t%s\\n" "$k" "$w" "$(tr "\\t" " " < "$p")"; '
            'else printf "%s\\t-\\t\\n" "$k"; fi; done'
        )

    def test_process_writable_read_only_and_absent(self):
        output = [
            "net.ipv4.ip_forward\t1\t0",
            # /proc/sys/net/ipv4/tcp_rmem holds tabs; the command turns them into spaces.
            "net.ipv4.tcp_rmem\t1\t4096 131072  6291456",
            "kernel.pid_max\t0\t4194304",
            "vm.overcommit_memory\t0\t0",
            "net.netfilter.nf_conntrack_max\t-\t",
        ]
        assert system.SysctlState().process(output) == {
            "net.ipv4.ip_forward": {"value": "0", "writable": True},
            "net.ipv4.tcp_rmem": {"value": "4096 131072 6291456", "writable": True},
            "kernel.pid_max": {"value": "4194304", "writable": False},
            "vm.overcommit_memory": {"value": "0", "writable": False},
            "net.netfilter.nf_conntrack_max": {"value": None, "writable": False},
        }

    def test_absent_key_without_trailing_tab(self):
        assert system.SysctlState().process(["fs.inotify.max_user_watches\t-"]) == {
            "fs.inotify.max_user_watches": {"value": None, "writable": False}
        }

    def test_empty_output(self):
        assert system.SysctlState().process([]) == {}


@covers(system.SystemdUnitEnabled)
class TestSystemdUnitEnabled:
    def test_command(self):
        assert system.SystemdUnitEnabled().command("fail2ban.service") == (
            "systemctl is-enabled fail2ban.service 2>/dev/null || true"
        )

    @pytest.mark.parametrize("state", ["enabled", "disabled", "masked", "static", "indirect"])
    def test_process(self, state):
        assert system.SystemdUnitEnabled().process([state]) == state

    def test_unknown_unit_prints_nothing(self):
        # "Failed to get unit file state ..." goes to stderr, which the command drops.
        assert system.SystemdUnitEnabled().process([]) == "missing"
        assert system.SystemdUnitEnabled().process([""]) == "missing"


@covers(system.ContainerVirtualization)
class TestContainerVirtualization:
    def test_command(self):
        assert system.ContainerVirtualization().command() == (
            "systemd-detect-virt --container 2>/dev/null || true"
        )

    @pytest.mark.parametrize("kind", ["none", "lxc", "systemd-nspawn", "openvz", "docker"])
    def test_process(self, kind):
        assert system.ContainerVirtualization().process([kind]) == kind

    def test_no_systemd_detect_virt(self):
        assert system.ContainerVirtualization().process([]) == "none"
        assert system.ContainerVirtualization().process(["  "]) == "none"


class FakeHost:
    def __init__(self, virt):
        self.virt = virt
        self.asked = []

    def get_fact(self, cls, **kwargs):
        self.asked.append(cls)
        return self.virt


@pytest.mark.parametrize(
    "virt,expected", [("none", False), ("lxc", True), ("systemd-nspawn", True), ("podman", True)]
)
def test_in_container(monkeypatch, virt, expected):
    fake = FakeHost(virt)
    monkeypatch.setattr(system, "host", fake)
    assert system.in_container() is expected
    assert fake.asked == [system.ContainerVirtualization]


@covers(system.MemoryTotalMb)
class TestMemoryTotalMb:
    def test_command(self):
        assert system.MemoryTotalMb().command() == (
            "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"
        )

    def test_process(self):
        assert system.MemoryTotalMb().process(["1967"]) == 1967
        assert system.MemoryTotalMb().process(["15991"]) == 15991

    def test_non_numeric_output_is_an_error(self):
        with pytest.raises(ValueError):
            system.MemoryTotalMb().process(["awk: cannot open /proc/meminfo"])


@covers(system.ToolModes)
class TestToolModes:
    def test_command_resolves_each_name_to_its_real_file(self, tmp_path):

        real = tmp_path / "x86_64-linux-gnu-as"
        real.write_text("#!/bin/sh\n")
        real.chmod(0o755)
        (tmp_path / "as").symlink_to(real)
        command = system.ToolModes().command(["as", "no-such-compiler"])
        out = subprocess.run(
            ["sh", "-c", command],
            env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert system.ToolModes().process(out) == {str(real): "755"}

    def test_process(self):
        assert system.ToolModes().process(["750 /usr/bin/x86_64-linux-gnu-as", ""]) == {
            "/usr/bin/x86_64-linux-gnu-as": "750"
        }
        assert system.ToolModes().process([]) == {}
