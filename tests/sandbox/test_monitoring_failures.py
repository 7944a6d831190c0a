"""The monitoring's failure paths: a config its own tool refuses never goes live.

promtool and amtool check every staged config on the host before it replaces the live
one: a refusal fails the converge with the tool's reason, leaves the live file and the
running service as they were (no restart, no reload), and the next clean converge has
nothing to repair.
"""

import pytest

from sandbox.converge import converge
from tests.inventory import in_group

pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(not in_group("monitoring"), reason="no monitoring host"),
]
NODE = in_group("monitoring")[0] if in_group("monitoring") else None
STRAY_RULES = "/etc/prometheus/rules/hand-written.yml"


def pid(unit: str) -> str:
    return NODE.host.check_output(f"systemctl show -p MainPID --value {unit}")


def sha(path: str) -> str:
    return NODE.host.check_output(f"sha256sum {path}")


def ready(port_key: str) -> bool:
    port = NODE.data[port_key]
    return NODE.host.run(f"curl -fsS -m 5 http://127.0.0.1:{port}/-/ready").rc == 0


def test_a_hand_written_rule_with_a_typo_stops_the_converge_at_promtool():
    """An operator's rule file with a typo, then a converge that changes Prometheus'
    config: promtool names the file, the live config and Prometheus stay as they were."""
    live = "/etc/prometheus/prometheus.yml"
    before, running = sha(live), pid("prometheus")
    NODE.host.check_output(
        f"printf 'groups:\\n  - name: mine\\n    rules:\\n      - alert: Mine\\n"
        f"        expr: up ==\\n' > {STRAY_RULES}"
    )
    try:
        interval = int(NODE.data["monitoring_scrape_interval"].rstrip("s")) + 1
        result = converge("--data", f"monitoring_scrape_interval={interval}s")
        assert result.returncode != 0 or result.failed_hosts
        assert "hand-written.yml" in result.stderr, result.stderr[-2000:]
        assert f"validation failed, live file untouched: {live}" in result.stderr
        assert sha(live) == before
        assert pid("prometheus") == running and ready("monitoring_prometheus_port")
    finally:
        NODE.host.run(f"rm -f {STRAY_RULES}")
    assert converge().check().changed == []


def test_an_alertmanager_config_amtool_refuses_never_goes_live(sandbox_secrets):
    """Well-formed for preflight, refused by Alertmanager's own rules (a group interval
    of zero): amtool's reason is shown, the webhook URL (a secret) is not."""
    live = "/etc/prometheus/alertmanager.yml"
    before, running = sha(live), pid("prometheus-alertmanager")
    result = converge("--data", "monitoring_group_interval=0s")
    assert result.returncode != 0 or result.failed_hosts
    assert "group_interval cannot be zero" in result.stderr, result.stderr[-2000:]
    assert f"validation failed, live file untouched: {live}" in result.stderr
    webhook = sandbox_secrets["ALERTMANAGER_WEBHOOK_URL"]
    assert webhook not in result.stdout + result.stderr
    assert sha(live) == before
    assert pid("prometheus-alertmanager") == running and ready("monitoring_alertmanager_port")
    assert converge().check().changed == []
