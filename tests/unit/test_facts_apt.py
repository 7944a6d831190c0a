"""galion.facts.apt: a package's candidate version.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import pytest

from galion.facts import apt
from tests.unit.fact_coverage import covers


@covers(apt.AptCandidate)
class TestAptCandidate:
    def test_command(self):
        assert apt.AptCandidate().command("certbot") == (
            "apt-cache policy certbot 2>/dev/null | awk '/Candidate:/ {print $2}'"
        )

    @pytest.mark.parametrize("version", ["2.1.0-4", "1.22.1-9+deb12u1", "4.0.0-2", "2:9.0.1378-2"])
    def test_process(self, version):
        assert apt.AptCandidate().process([version]) == version

    def test_no_candidate(self):
        assert apt.AptCandidate().process(["(none)"]) is None

    def test_unknown_package_prints_nothing(self):
        assert apt.AptCandidate().process([]) is None
        assert apt.AptCandidate().process([""]) is None
