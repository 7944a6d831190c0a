"""galion/ops/crash_restart.py: the units the roles give the restart policy are the ones
node_exporter reports (ServiceFailed), and its pattern matches what systemd names them."""

import ast
import re
from pathlib import Path

from galion.ops import crash_restart

REPO = Path(__file__).resolve().parents[2]


def units_given_the_policy() -> set[str]:
    """The unit argument of every restarts_after_crash(...) call in operations/."""
    found = set()
    for path in (REPO / "operations").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", ""))
                == "restarts_after_crash"
            ):
                unit = node.args[1]
                if isinstance(unit, ast.Constant):
                    found.add(unit.value)
                else:  # monitoring's daemons: f"{unit}.service" of each daemon's package
                    found.add("<computed>")
    return found


def test_every_unit_given_the_policy_is_watched_and_every_watched_one_is_given_it():
    given = units_given_the_policy()
    assert "<computed>" in given, "the scan no longer sees monitoring's daemons"
    literal = given - {"<computed>"}
    # Prometheus and Alertmanager come through monitoring's daemons.apply.
    assert literal | {"prometheus.service", "prometheus-alertmanager.service"} == set(
        crash_restart.UNITS
    )


def test_the_pattern_matches_each_unit_and_every_cluster_of_a_template_only():
    pattern = crash_restart.units_pattern()
    for name in (
        "nginx.service",
        "postgresql@15-main.service",
        "postgresql@17-main.service",
        "redis-server.service",
        "ssh.service",
        "prometheus-alertmanager.service",
    ):
        assert re.fullmatch(pattern, name), name
    for name in (
        "nginx.socket",
        "xnginx.service",
        "postgresql.service",
        "postgresql@.service",
        "prometheus-node-exporter.service",
        "galion-backup-full.service",
    ):
        assert not re.fullmatch(pattern, name), name


def test_the_dropin_restarts_on_failure_only_and_gives_up():
    text = crash_restart.CRASH_RESTART_DROPIN
    assert "Restart=on-failure\n" in text
    assert re.search(r"StartLimitBurst=\d+\n", text)
    assert re.search(r"StartLimitIntervalSec=[1-9]\d*\n", text)
