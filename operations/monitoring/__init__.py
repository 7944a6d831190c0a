"""Monitoring for hosts in `monitoring`: Prometheus and Alertmanager from the distro,
scrape targets generated from the inventory's groups, alert rules with thresholds from
data (each proven by a promtool case in tests/unit/test_monitoring.py), blackbox probes of every
public name, and alerts routed by severity to e-mail and a webhook.

One module per concern, in the order of the entry point below: daemons.py (the
distro's packages; how each daemon gets its flags, restarts or reloads), blackbox.py
(the HTTPS health probe), alertmanager.py (receivers and routes by severity),
prometheus.py (its config and the alert rules) with targets.py (what it scrapes, from
the inventory's groups). checks.py holds preflight's checks of the alert receivers.
"""

import re

from pyinfra.api import deploy

from galion.role import Knob, Role
from galion.validators import EMAIL, int_between, matches

from . import alertmanager, blackbox, checks, daemons, prometheus
from .alertmanager import SEVERITIES


@deploy("Monitoring: Prometheus, Alertmanager, probes")
def monitoring():
    daemons.install()
    blackbox.health_probe()
    alertmanager.receivers_and_routes()
    prometheus.targets_and_rules()


DURATION = re.compile(r"^\d+[smhd]$")


def _thresholds_ok(value) -> bool:
    defaults = KNOBS["monitoring_thresholds"].default
    return (
        isinstance(value, dict)
        and set(value) == set(defaults)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value.values()
        )
    )


KNOBS = {
    "monitoring_prometheus_port": Knob(
        9090,
        "Prometheus' port (loopback on the single box, the private address in a fleet).",
        check=int_between(1024, 65535),
        problem="is not a TCP port",
    ),
    "monitoring_alertmanager_port": Knob(
        9093,
        "Alertmanager's port (same binding as Prometheus).",
        check=int_between(1024, 65535),
        problem="is not a TCP port",
    ),
    "monitoring_blackbox_port": Knob(
        9115,
        "Blackbox exporter's port, on loopback: only the local Prometheus asks it.",
        check=int_between(1024, 65535),
        problem="is not a TCP port",
    ),
    "monitoring_retention_time": Knob(
        "30d",
        "How long Prometheus keeps samples.",
        check=matches(DURATION),
        problem="is not a duration",
        fix='e.g. "30d"',
    ),
    "monitoring_retention_size": Knob(
        "4GB",
        "...and at most this much disk: the oldest blocks go first when it is reached.",
        check=matches(re.compile(r"^\d+(MB|GB|TB)$")),
        problem="is not a size",
        fix='e.g. "4GB"',
    ),
    "monitoring_prometheus_memory_mb": Knob(
        512,
        "Memory cap of Prometheus (systemd MemoryMax).",
        check=int_between(128, 1_000_000),
        problem="is not a size in MB",
    ),
    "monitoring_scrape_interval": Knob(
        "15s",
        "How often every target is scraped, and the rules evaluated.",
        check=matches(DURATION),
        problem="is not a duration",
        fix='e.g. "15s"',
    ),
    "monitoring_group_wait": Knob(
        "30s",
        "Alertmanager: wait this long to batch the first alerts of a group...",
        check=matches(DURATION),
        problem="is not a duration",
        fix='e.g. "30s"',
    ),
    "monitoring_group_interval": Knob(
        "5m",
        "...this long before telling about new alerts in a group already sent...",
        check=matches(DURATION),
        problem="is not a duration",
        fix='e.g. "5m"',
    ),
    "monitoring_repeat_interval": Knob(
        {"P0": "1h", "P1": "4h", "P2": "24h"},
        "...and repeat an alert still firing this often, per severity.",
        check=lambda v: (
            isinstance(v, dict)
            and set(v) == set(SEVERITIES)
            and all(matches(DURATION)(x) for x in v.values())
        ),
        problem="is not a duration per severity",
        fix="{default}",
    ),
    "monitoring_alert_email": Knob(
        "",
        'Where alert e-mails go ("" = operator_email), sent through base_mail_relay.',
        check=lambda v: v == "" or matches(EMAIL)(v),
        problem="is not an e-mail address",
        fix='a mailbox, or "" for operator_email',
    ),
    "monitoring_webhook_enabled": Knob(
        True,
        "Post alerts to a webhook (a bridge to Slack or Telegram, any receiver of "
        "Alertmanager's JSON) whose URL is the secret ALERTMANAGER_WEBHOOK_URL; off: e-mail "
        "only (then base_mail_relay must be set).",
    ),
    # The outside service alerts when the heartbeats stop, i.e. when this box, Prometheus
    # or Alertmanager is down, which nothing on the box can report.
    "monitoring_heartbeat_enabled": Knob(
        False,
        "Send the always-firing Watchdog alert to a dead man's switch outside this box "
        "(healthchecks.io, Better Stack, an on-call service's heartbeat) at the secret "
        "ALERTMANAGER_HEARTBEAT_URL.",
    ),
    "monitoring_heartbeat_interval": Knob(
        "1m",
        "How often the heartbeat is sent (the outside service's period must be longer).",
        check=matches(DURATION),
        problem="is not a duration",
        fix='e.g. "1m"',
    ),
    "monitoring_probe_path": Knob(
        "/health",
        "Path every public name is probed on over HTTPS (the apps' health endpoints).",
        check=matches(re.compile(r"^/[A-Za-z0-9._~/-]*$")),
        problem="is not a URL path",
        fix='e.g. "/health"',
    ),
    "monitoring_probe_ca_bundle": Knob(
        "",
        'Local PEM file of CAs the probes trust besides the system\'s ("" = system only): a '
        "staging CA, a private one.",
    ),
    "monitoring_thresholds": Knob(
        {
            "cpu_percent": 80,  # P1: CPU busy above this for 10 minutes
            "memory_percent": 90,  # P0: memory in use above this for 5 minutes
            "disk_free_critical_percent": 5,  # P0: a file system has less free than this
            "disk_free_warning_percent": 15,  # P1
            "disk_full_within_hours": 24,  # P1: free space trend reaches 0 within this
            "probe_latency_seconds": 1,  # P1: the health probe of a public name is slower
            "error_percent": 1,  # P1: 5xx answers of a public name over 5 minutes
            "latency_p99_seconds": 1,  # P1: 99th percentile of a public name's requests
            "min_requests_per_second": 0.2,  # error rate and latency need this much traffic
            "db_connections_percent": 80,  # P1: of max_connections
            "slow_query_seconds": 300,  # P2: a transaction open longer than this
            "redis_memory_percent": 90,  # P1: of maxmemory
            "container_memory_percent": 90,  # P1: of the container's limit
            "container_restarts_per_hour": 3,  # P1: restarts by Docker's restart policy
            "cache_hit_percent": 70,  # P2: Redis keyspace hits below this over an hour
            "certificate_days": 14,  # P1: a public certificate expires within this
            # P2, the scaling trigger: open client connections at the edge (the single
            # box is sized for 500-1000 concurrent users).
            "edge_connections": 800,
            "backup_max_age_hours": 26,  # P0: newest good backup per repo is older
            "wal_archive_max_age_minutes": 15,  # P0: no WAL segment archived for this long
            "restore_drill_max_age_days": 8,  # P2: no restore drill ran for this long
            # P1: a galion_*.prom textfile older than this (backups' is rewritten every 5 min).
            "textfile_max_age_seconds": 900,
        },
        "Alert thresholds (galion-alerts.yml.j2 names each one where it is used).",
        check=_thresholds_ok,
        problem="is not the table of positive numbers it should be",
        fix="copy the default from operations/monitoring/__init__.py and change the numbers",
    ),
}


ROLE = Role(
    groups=("monitoring",),
    order=80,
    knob_prefixes=("monitoring_",),
    required_secrets=checks.required_secrets,
    peer_groups=("db", "edge", "app"),
    check_host=checks.check_host,
)
