"""Alerts reach a person: on a converged sandbox, PostgreSQL stopped and the last backup
made to look too old each fire their alert, and Alertmanager posts both to the webhook
receiver this test runs on the sandbox bridge (ALERTMANAGER_WEBHOOK_URL) within the
rule's `for`, plus a scrape, an evaluation and Alertmanager's group wait (or its
group interval, for an alert that fired before).

Both failures are made at once (one wait); everything is put back afterwards.
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox import settings
from tests.inventory import in_group

pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(
        not in_group("monitoring") or not in_group("db"), reason="no monitoring/db host"
    ),
]
NODE = in_group("monitoring")[0] if in_group("monitoring") else None
PROM = "/var/lib/prometheus/node-exporter/galion_backup.prom"


class Receiver(ThreadingHTTPServer):
    """Alertmanager's webhook JSON, noted with the time each alert first came firing."""

    def __init__(self):
        self.firing: dict[str, float] = {}
        self.payloads: list[dict] = []

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.payloads.append(body)
                for alert in body.get("alerts", []):
                    if alert["status"] == "firing":
                        receiver.firing.setdefault(alert["labels"]["alertname"], time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__((settings.gateway_address(), settings.ALERT_WEBHOOK_PORT), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def seconds(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def rule_for(alert: str) -> int:
    rules = NODE.host.file("/etc/prometheus/rules/galion.yml").content_string
    m = re.search(rf"- alert: {alert}\n(?:(?!- alert).*\n)*?\s+for: (\w+)", rules)
    return seconds(m.group(1)) if m else 0


def test_database_down_and_stale_backup_alerts_reach_the_webhook():
    receiver = Receiver()
    cluster = "postgresql.service"
    too_old = time.time() - (NODE.data["monitoring_thresholds"]["backup_max_age_hours"] + 4) * 3600
    try:
        NODE.host.check_output("systemctl stop galion-backup-metrics.timer")
        NODE.host.check_output(
            f"sed -i -E 's/^(galion_backup_last_success_timestamp_seconds\\{{[^}}]*\\}}) .*/\\1 "
            f"{too_old:.0f}/' {PROM}"
        )
        started = time.monotonic()
        NODE.host.check_output(f"systemctl stop {cluster}")
        interval = seconds(NODE.data["monitoring_scrape_interval"])
        # A new group waits group_wait; a group that fired before (an earlier test
        # stopped PostgreSQL) tells of a new firing at its next group_interval.
        wait = max(
            seconds(NODE.data["monitoring_group_wait"]),
            seconds(NODE.data["monitoring_group_interval"]),
        )
        # for + one scrape + one evaluation + Alertmanager's wait, and slack for the
        # textfile and pg exporters' own answer times.
        bound = {
            alert: rule_for(alert) + 2 * interval + wait + 15
            for alert in ("PostgresDown", "BackupTooOld")
        }
        deadline = started + max(bound.values()) + 30
        while time.monotonic() < deadline and set(bound) - set(receiver.firing):
            time.sleep(1)
        took = {a: receiver.firing[a] - started for a in receiver.firing if a in bound}
        print(f"alerts at the webhook after: {took} (bounds {bound})")
        assert set(bound) <= set(took), (took, receiver.payloads[-3:])
        for alert, bound_seconds in bound.items():
            assert took[alert] <= bound_seconds, (alert, took[alert], bound_seconds)
        # What a person reads: severity and a summary naming the host.
        alerts = [a for p in receiver.payloads for a in p["alerts"]]
        down = next(a for a in alerts if a["labels"]["alertname"] == "PostgresDown")
        assert down["labels"]["severity"] == "P0"
        assert NODE.name in down["annotations"]["summary"]
    finally:
        NODE.host.run(f"systemctl start {cluster}")
        NODE.host.run("/usr/local/sbin/galion-backup-metrics")
        NODE.host.run("systemctl start galion-backup-metrics.timer")
        receiver.shutdown()
        receiver.server_close()
    assert NODE.host.service("postgresql").is_running
