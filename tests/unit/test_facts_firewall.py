"""galion.facts.firewall: UFW's rules and status.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

from galion.facts import firewall
from tests.unit.fact_coverage import covers


@covers(firewall.UfwAddedRules)
class TestUfwAddedRules:
    def test_command_and_requirements(self):
        fact = firewall.UfwAddedRules()
        assert fact.command() == "ufw show added"
        assert fact.requires_command() == "ufw"
        assert fact.default() == []

    def test_process(self):
        output = [
            "Added user rules (see 'ufw status' for running firewall):",
            "ufw allow from 10.8.0.0/24",
            "ufw limit 22/tcp",
            "ufw allow 80/tcp",
            "ufw allow 443/tcp",
            "ufw allow from 10.8.0.0/24 to any port 5432 proto tcp",
        ]
        assert firewall.UfwAddedRules().process(output) == [
            "allow from 10.8.0.0/24",
            "limit 22/tcp",
            "allow 80/tcp",
            "allow 443/tcp",
            "allow from 10.8.0.0/24 to any port 5432 proto tcp",
        ]

    def test_no_rules(self):
        output = ["Added user rules (see 'ufw status' for running firewall):", "(None)"]
        assert firewall.UfwAddedRules().process(output) == []
        assert firewall.UfwAddedRules().process([]) == []


UFW_ACTIVE = """\
Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     LIMIT IN    Anywhere
80/tcp                     ALLOW IN    Anywhere
443/tcp                    ALLOW IN    Anywhere
22/tcp (v6)                LIMIT IN    Anywhere (v6)
80/tcp (v6)                ALLOW IN    Anywhere (v6)
443/tcp (v6)               ALLOW IN    Anywhere (v6)
"""


@covers(firewall.UfwStatus)
class TestUfwStatus:
    def test_command_and_requirements(self):
        fact = firewall.UfwStatus()
        assert fact.command() == "ufw status verbose"
        assert fact.requires_command() == "ufw"
        assert fact.requires_command("x", y=1) == "ufw"
        assert fact.default() == {"active": False}

    def test_active(self):
        assert firewall.UfwStatus().process(UFW_ACTIVE.splitlines()) == {
            "active": True,
            "incoming": "deny",
            "outgoing": "allow",
            "routed": "deny",
        }

    def test_routing_disabled(self):
        output = [
            "Status: active",
            "Logging: on (low)",
            "Default: reject (incoming), allow (outgoing), disabled (routed)",
            "New profiles: skip",
        ]
        assert firewall.UfwStatus().process(output) == {
            "active": True,
            "incoming": "reject",
            "outgoing": "allow",
            "routed": "disabled",
        }

    def test_inactive(self):
        # An inactive ufw prints only this line, not its defaults.
        assert firewall.UfwStatus().process(["Status: inactive"]) == {"active": False}

    def test_empty_output(self):
        assert firewall.UfwStatus().process([]) == {"active": False}
