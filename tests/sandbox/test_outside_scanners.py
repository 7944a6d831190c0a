"""What outside scanners say, run from another network namespace ("another machine"):
sslyze against Mozilla's "intermediate" TLS configuration, ssh-audit against sshd.
Both depend on the distro's OpenSSL and OpenSSH, so they run on every distro."""

import json
import subprocess
import sys

import pytest
import requests

from galion import connection
from tests.inventory import in_group, nodes


@pytest.fixture(scope="module")
def probe(sandbox_state):
    return sandbox_state["probe"]["netns"]


def from_probe(netns: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=300
    )


@pytest.mark.skipif(not in_group("edge"), reason="no edge host in the inventory")
def test_the_edge_passes_sslyze_mozilla_intermediate(probe, sandbox_state, tmp_path):
    edge = in_group("edge")[0]
    # The sandbox's ACME CA (Pebble) makes a new root at every start: trust that one.
    roots = tmp_path / "pebble-roots.pem"
    roots.write_text(
        requests.get(
            sandbox_state["acme"]["roots"], verify=sandbox_state["ca_file"], timeout=10
        ).text
    )
    report = tmp_path / "sslyze.json"
    targets = [f"{vhost['name']}:443{{{edge.address}}}" for vhost in edge.data["nginx_tls_vhosts"]]
    scan = from_probe(
        probe,
        sys.executable,
        "-m",
        "sslyze",
        "--mozilla_config=intermediate",
        f"--certinfo_ca_file={roots}",
        f"--json_out={report}",
        *targets,
    )
    assert scan.returncode == 0, scan.stdout.split("COMPLIANCE")[-1] + scan.stderr[-2000:]
    results = json.loads(report.read_text())["server_scan_results"]
    assert len(results) == len(targets)
    assert all(r["scan_status"] == "COMPLETED" for r in results)
    assert "TLS curves" not in scan.stdout


@pytest.mark.parametrize("node", nodes(), ids=lambda n: n.name)
def test_sshd_has_no_ssh_audit_failure(probe, node):
    audit = from_probe(
        probe,
        sys.executable,
        "-m",
        "ssh_audit",
        "--no-colors",
        # Its DHEat test opens ~40 connections in 1.5 s: UFW's SSH rate limit answers
        # that (and breaks the tool). 3 connections remain.
        "--skip-rate-test",
        "-p",
        str(connection.login_port(node.data)),
        node.address,
    )
    # ssh-audit exits 0 (good), 2 (warnings only), 3 (failures), 1 (no connection).
    assert audit.returncode in (0, 2), audit.stdout
    assert "[fail]" not in audit.stdout
    assert "(key) ssh-ed25519" in audit.stdout and "ecdsa-sha2-nistp256" not in audit.stdout
