"""galion.ops.firewall's decisions, as pure functions: UFW's facts in, commands out."""

import pytest
from pyinfra.api import OperationError

from galion.ops import firewall

FRESH = {"active": False}
ACTIVE = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "deny"}
DEFAULTS = {"incoming": "deny", "outgoing": "allow", "routed": "deny"}


@pytest.mark.parametrize(
    "wanted",
    [
        [],
        ["allow 80/tcp", "allow 443/tcp"],
        ["deny 22/tcp", "allow 80/tcp"],
        ["reject 22/tcp"],
        # Only some sources: the operator may not be among them.
        ["allow from 10.8.0.0/24 to any port 22 proto tcp"],
    ],
)
def test_ufw_refuses_rules_that_do_not_let_ssh_in(wanted):
    with pytest.raises(OperationError, match="^refusing to enable UFW without a rule for port 22$"):
        firewall.ufw_check_port(wanted, 22)


@pytest.mark.parametrize(
    "wanted",
    [
        ["allow 22/tcp"],
        ["limit 22/tcp", "allow 80/tcp"],
        ["allow from 10.8.0.0/24 to any port 22 proto tcp", "limit 22/tcp comment 'ssh'"],
    ],
)
def test_ufw_accepts_a_rule_that_lets_ssh_in(wanted):
    assert firewall.ufw_check_port(wanted, 22) is None


def test_ufw_without_a_port_to_protect_checks_nothing():
    assert firewall.ufw_check_port([], None) is None


def test_ufw_fresh_host_gets_everything_in_order():
    commands = firewall.ufw_commands(
        rules=["limit 22/tcp", "allow 80/tcp"],
        prepend=["allow from 10.8.0.0/24"],
        present=[],
        status=FRESH,
        defaults=DEFAULTS,
    )
    assert commands == [
        "ufw prepend allow from 10.8.0.0/24",
        "ufw limit 22/tcp",
        "ufw allow 80/tcp",
        "ufw default deny incoming",
        "ufw default allow outgoing",
        "ufw default deny routed",
        "ufw --force enable",
    ]


def test_ufw_converged_host_gets_nothing():
    commands = firewall.ufw_commands(
        rules=["limit 22/tcp", "allow 80/tcp"],
        prepend=["allow from 10.8.0.0/24"],
        present=["allow from 10.8.0.0/24", "limit 22/tcp", "allow 80/tcp"],
        status=ACTIVE,
        defaults=DEFAULTS,
    )
    assert commands == []


def test_ufw_appends_missing_and_deletes_unwanted_rules():
    commands = firewall.ufw_commands(
        rules=["limit 22/tcp", "allow 443/tcp"],
        prepend=[],
        present=["limit 22/tcp", "allow 8080/tcp", "allow 80/tcp"],
        status=ACTIVE,
        defaults=None,
    )
    assert commands == ["ufw allow 443/tcp", "ufw delete allow 8080/tcp", "ufw delete allow 80/tcp"]


def test_ufw_prepends_a_trusted_source_on_an_active_firewall():
    commands = firewall.ufw_commands(
        rules=["limit 22/tcp"],
        prepend=["allow from 192.0.2.10"],
        present=["limit 22/tcp"],
        status=ACTIVE,
        defaults=DEFAULTS,
    )
    assert commands == ["ufw prepend allow from 192.0.2.10"]


def test_ufw_changes_only_the_default_that_differs():
    status = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "allow"}
    commands = firewall.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], status, DEFAULTS)
    assert commands == ["ufw default deny routed"]


def test_ufw_routed_disabled_on_a_host_that_forwards_nothing_counts_as_deny():
    # ufw prints "disabled (routed)" with ip_forward=0, even right after `default deny`.
    status = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "disabled"}
    assert firewall.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], status, DEFAULTS) == []


def test_ufw_enables_an_inactive_firewall_with_its_rules_in_place():
    commands = firewall.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], FRESH, None)
    assert commands == ["ufw --force enable"]


def test_ufw_missing_binary_defaults_still_enable():
    # UfwStatus's default when ufw is not installed yet (prepare phase).
    commands = firewall.ufw_commands(
        ["allow 22/tcp"], [], [], {"active": False}, {"incoming": "deny"}
    )
    assert commands == ["ufw allow 22/tcp", "ufw default deny incoming", "ufw --force enable"]


def test_ufw_refusal_is_not_fooled_by_a_port_that_only_contains_the_ssh_port():
    """`allow 2222/tcp` or a rule for an office range does not keep port 22 open."""
    with pytest.raises(OperationError):
        firewall.ufw_check_port(["allow 2222/tcp comment 'x'"], 22)
    with pytest.raises(OperationError):
        firewall.ufw_check_port(["allow from 10.0.22.0/24 to any port 443 proto tcp"], 22)
    with pytest.raises(OperationError):
        firewall.ufw_check_port(["deny 22/tcp"], 22)
    assert firewall.ufw_check_port(["limit 22/tcp comment 'galion: ssh'"], 22) is None
    assert firewall.ufw_check_port(["allow 2222/tcp"], 2222) is None
