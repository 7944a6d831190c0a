"""Lynis (the distro's package) audits a converged host: its hardening index is printed
and must be at least 80. The suggestions declined, and why, are in README.md."""

import re

import pytest

from tests.inventory import nodes

MINIMUM_INDEX = 80


@pytest.mark.parametrize("node", nodes(), ids=lambda n: n.name)
def test_lynis_hardening_index(node, capsys):
    install = node.host.run(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lynis"
    )
    assert install.rc == 0, install.stderr
    audit = node.host.run("lynis audit system --quick --no-colors")
    assert audit.rc == 0, audit.stderr[-2000:]
    report = node.host.file("/var/log/lynis-report.dat").content_string
    index = int(re.search(r"^hardening_index=(\d+)$", report, re.M).group(1))
    suggestions = re.findall(r"^suggestion\[\]=([A-Z0-9-]+)\|", report, re.M)
    with capsys.disabled():
        print(
            f"\nLynis hardening index of {node.name}: {index} "
            f"(suggestions: {' '.join(sorted(set(suggestions)))})"
        )
    assert index >= MINIMUM_INDEX
