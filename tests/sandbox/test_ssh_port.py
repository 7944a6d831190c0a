"""Moving SSH to another port (docs/OPERATIONS.md, "Moving SSH"): no moment without a
port that takes logins, and the next run connects on the new one."""

import subprocess
from pathlib import Path

import pytest
import testinfra

from sandbox.converge import converge
from tests.inventory import nodes

NODE = nodes()[0]
NEW_PORT = 2222
pytestmark = pytest.mark.once


def on_port(port: int):
    """The sandbox host over a login on `port` (the suite's usual connection is on 22)."""
    return testinfra.get_host(
        f"ssh://{NODE.user}@{NODE.address}:{port}",
        sudo=True,
        ssh_identity_file=str(Path(NODE.data["ssh_key"]).expanduser()),
        ssh_config=NODE.host.backend.ssh_config,
    )


def listening_ssh_ports(port: int = 22) -> set[int]:
    out = on_port(port).check_output("ss -Hltnp | grep '\"sshd\"' | awk '{print $4}'")
    return {int(addr.rsplit(":", 1)[1]) for addr in out.split()}


def firewall_ssh_ports(port: int = 22) -> set[int]:
    added = on_port(port).check_output("ufw show added")
    return {
        int(line.split()[2].split("/")[0])
        for line in added.splitlines()
        if line.startswith("ufw limit ") and "galion: ssh" in line
    }


def test_a_move_whose_login_cannot_be_proven_keeps_the_old_port():
    """A firewall outside the host (here: on the operator's side) drops the new port: the
    run fails at the proof, names the port, and SSH still answers on the old one."""
    block = ["OUTPUT", "-d", NODE.address, "-p", "tcp", "--dport", str(NEW_PORT), "-j", "DROP"]
    subprocess.run(["iptables", "-I", *block], check=True)
    try:
        result = converge("--data", f"base_ssh_port={NEW_PORT}", "--data", "ssh_port=22")
    finally:
        subprocess.run(["iptables", "-D", *block], check=True)
    assert result.returncode != 0 or result.failed_hosts
    assert "SSH stays on its old port as well" in result.stderr, result.stderr[-2000:]
    assert 22 in listening_ssh_ports() and 22 in firewall_ssh_ports()
    # Left as the proof found it: both open. A plain run (the port unchanged) closes 2222.
    converge().check()
    assert listening_ssh_ports() == {22} and firewall_ssh_ports() == {22}


def test_ssh_moves_and_the_next_run_connects_on_the_new_port():
    converge("--data", f"base_ssh_port={NEW_PORT}", "--data", "ssh_port=22").check()
    try:
        assert listening_ssh_ports(NEW_PORT) == {NEW_PORT}
        assert firewall_ssh_ports(NEW_PORT) == {NEW_PORT}
        # No --data ssh_port: pyinfra follows base_ssh_port, and nothing is left to change.
        assert converge("--data", f"base_ssh_port={NEW_PORT}").check().changed == []
    finally:
        # Moving back is the same procedure, and itself a run that connects on the new port.
        converge("--data", f"ssh_port={NEW_PORT}").check()
    assert listening_ssh_ports() == {22} and firewall_ssh_ports() == {22}
