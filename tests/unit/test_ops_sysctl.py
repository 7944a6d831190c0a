"""galion.ops.sysctl's decisions, as pure functions: sysctl values in, commands out."""

from galion.ops import sysctl

CURRENT = {
    "net.ipv4.ip_forward": {"value": "0", "writable": True},
    "net.ipv4.tcp_rmem": {"value": "4096 131072 6291456", "writable": True},
    "vm.swappiness": {"value": "60", "writable": True},
    "kernel.pid_max": {"value": "4194304", "writable": False},
    "fs.file-max": {"value": "9223372036854775807", "writable": False},
    "net.netfilter.nf_conntrack_max": {"value": None, "writable": False},
}


def test_sysctl_writes_only_what_differs_and_may_be_written():
    values = {
        "vm.swappiness": 10,
        "net.ipv4.ip_forward": "1",
        "net.ipv4.tcp_rmem": "4096\t131072  6291456",
        "kernel.pid_max": 65536,
        "fs.file-max": "9223372036854775807",
        "net.netfilter.nf_conntrack_max": 262144,
        "net.core.somaxconn": 4096,
    }
    commands, skipped = sysctl.sysctl_commands(values, CURRENT)
    assert [str(c) for c in commands] == [
        "sysctl -q -w net.ipv4.ip_forward=1",
        "sysctl -q -w vm.swappiness=10",
    ]
    assert skipped == [
        "kernel.pid_max (read-only here: 4194304, wanted 65536)",
        "net.core.somaxconn (absent)",
        "net.netfilter.nf_conntrack_max (absent)",
    ]


def test_sysctl_converged_is_silent():
    values = {"vm.swappiness": "60", "kernel.pid_max": 4194304, "net.ipv4.ip_forward": 0}
    assert sysctl.sysctl_commands(values, CURRENT) == ([], [])
    assert sysctl.sysctl_commands({}, CURRENT) == ([], [])


def test_sysctl_normalises_whitespace_in_the_written_value():
    values = {"net.ipv4.tcp_rmem": " 4096  87380\t6291456 "}
    commands, skipped = sysctl.sysctl_commands(values, CURRENT)
    assert [str(c) for c in commands] == ["sysctl -q -w net.ipv4.tcp_rmem=4096 87380 6291456"]
    assert skipped == []
