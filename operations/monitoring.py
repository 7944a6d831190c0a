"""Monitoring for hosts in `monitoring`: Prometheus and Alertmanager from the distro,
scrape targets generated from the inventory's groups, alert rules with thresholds from
data (each proven by a promtool case in tests/unit/test_monitoring.py), blackbox probes of every
public name, and alerts routed by severity to e-mail and a webhook."""

import json
import re
import urllib.parse

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import exporters, secrets, topology
from galion.facts import AptCandidate
from galion.ops import config_file, local_file, render
from galion.preflight import EMAIL, Problem, int_between, matches
from galion.role import Role

RULES_DIR = "/etc/prometheus/rules"
PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"
ALERTMANAGER_YML = "/etc/prometheus/alertmanager.yml"
BLACKBOX_YML = "/etc/prometheus/blackbox.yml"
PROBE_CA = "/etc/prometheus/probe-ca.pem"
WEBHOOK_SECRET = "ALERTMANAGER_WEBHOOK_URL"
HEARTBEAT_SECRET = "ALERTMANAGER_HEARTBEAT_URL"

KNOBS = {
    # Prometheus' port (loopback on the single box, the private address in a fleet).
    "monitoring_prometheus_port": 9090,
    # Alertmanager's port (same binding as Prometheus).
    "monitoring_alertmanager_port": 9093,
    # Blackbox exporter's port, on loopback: only the local Prometheus asks it.
    "monitoring_blackbox_port": 9115,
    # How long Prometheus keeps samples (the plan: 30 days).
    "monitoring_retention_time": "30d",
    # ...and at most this much disk: the oldest blocks go first when it is reached.
    "monitoring_retention_size": "4GB",
    # Memory cap of Prometheus (systemd MemoryMax), the plan's 512 MB.
    "monitoring_prometheus_memory_mb": 512,
    # How often every target is scraped, and the rules evaluated.
    "monitoring_scrape_interval": "15s",
    # Alertmanager: wait this long to batch the first alerts of a group...
    "monitoring_group_wait": "30s",
    # ...this long before telling about new alerts in a group already sent...
    "monitoring_group_interval": "5m",
    # ...and repeat an alert still firing this often, per severity.
    "monitoring_repeat_interval": {"P0": "1h", "P1": "4h", "P2": "24h"},
    # Where alert e-mails go ("" = operator_email), sent through base_mail_relay.
    "monitoring_alert_email": "",
    # Post alerts to a webhook (Slack, Telegram bridge, any): its URL is the secret
    # ALERTMANAGER_WEBHOOK_URL. Off: e-mail only (then base_mail_relay must be set).
    "monitoring_webhook_enabled": True,
    # Send the always-firing Watchdog alert to a dead man's switch outside this box
    # (healthchecks.io, Better Stack, an on-call service's heartbeat): it alerts when the
    # heartbeats stop, i.e. when this box, Prometheus or Alertmanager is down, which
    # nothing on the box can report. Its URL is the secret ALERTMANAGER_HEARTBEAT_URL.
    "monitoring_heartbeat_enabled": False,
    # How often the heartbeat is sent (the outside service's period must be longer).
    "monitoring_heartbeat_interval": "1m",
    # Path every public name is probed on over HTTPS (the apps' health endpoints).
    "monitoring_probe_path": "/health",
    # Local PEM file of CAs the probes trust besides the system's ("" = system only): a
    # staging CA, a private one.
    "monitoring_probe_ca_bundle": "",
    # Alert thresholds (galion-alerts.yml.j2 names each one where it is used).
    "monitoring_thresholds": {
        "cpu_percent": 80,  # P1: CPU busy above this for 10 minutes
        "memory_percent": 90,  # P0: memory in use above this for 5 minutes
        "disk_free_critical_percent": 5,  # P0: a file system has less free than this
        "disk_free_warning_percent": 15,  # P1
        "disk_full_within_hours": 24,  # P1: free space trend reaches 0 within this
        "probe_latency_seconds": 1,  # P1: the health probe of a public name is slower
        "error_percent": 1,  # P1: 5xx answers of a public name over 5 minutes (the plan)
        "latency_p99_seconds": 1,  # P1: 99th percentile of a public name's requests
        "min_requests_per_second": 0.2,  # error rate and latency need this much traffic
        "db_connections_percent": 80,  # P1: of max_connections
        "slow_query_seconds": 300,  # P2: a transaction open longer than this
        "redis_memory_percent": 90,  # P1: of maxmemory
        "container_memory_percent": 90,  # P1: of the container's limit
        "container_restarts_per_hour": 3,  # P1: restarts by Docker's restart policy
        "cache_hit_percent": 70,  # P2: Redis keyspace hits below this over an hour
        "certificate_days": 14,  # P1: a public certificate expires within this
        # P2, the scaling trigger: open client connections at the edge (the plan's box
        # serves 500-1000 concurrent users).
        "edge_connections": 800,
        "backup_max_age_hours": 26,  # P0: newest good backup per repo is older
        "wal_archive_max_age_minutes": 15,  # P0: no WAL segment archived for this long
        "restore_drill_max_age_days": 8,  # P2: no restore drill ran for this long
        # P1: a galion_*.prom textfile older than this (backups' is rewritten every 5 min).
        "textfile_max_age_seconds": 900,
    },
}
SEVERITIES = ("P0", "P1", "P2")
# amtool's verdict with every URL masked: its messages quote the receivers' URLs, which
# hold the webhook's secret.
AMTOOL_CHECK = (
    "out=$(amtool check-config {staged} 2>&1); rc=$?; printf '%s\\n' \"$out\" "
    "| sed -E 's#[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]\"]*#<URL hidden>#g' >&2; exit $rc"
)
DURATION = re.compile(r"^\d+[smhd]$")


def required_secrets(data) -> list[str]:
    return [
        *([WEBHOOK_SECRET] if data.get("monitoring_webhook_enabled") else []),
        *([HEARTBEAT_SECRET] if data.get("monitoring_heartbeat_enabled") else []),
    ]


def _thresholds_ok(value) -> bool:
    defaults = KNOBS["monitoring_thresholds"]
    return (
        isinstance(value, dict)
        and set(value) == set(defaults)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value.values()
        )
    )


def _port_ok(url: urllib.parse.SplitResult) -> bool:
    """A typo in the port ("8o80") is refused here: amtool would refuse it on the host,
    and its message (which holds the secret URL) is not shown."""
    try:
        url.port
    except ValueError:
        return False
    return True


def _check_host(name: str, data, groups) -> list[Problem]:
    if "monitoring" not in groups:
        return []
    if not data.get("monitoring_webhook_enabled") and not data.get("base_mail_relay"):
        return [
            Problem(
                name,
                "monitoring_webhook_enabled",
                "is off and base_mail_relay is empty: alerts would reach nobody",
                "set ALERTMANAGER_WEBHOOK_URL and leave the webhook on, or set base_mail_relay",
            )
        ]
    if data.get("monitoring_webhook_enabled") and secrets.problem(WEBHOOK_SECRET) is None:
        url = urllib.parse.urlsplit(secrets.get(WEBHOOK_SECRET))
        if url.scheme not in ("http", "https") or not url.hostname or not _port_ok(url):
            return [
                Problem(
                    name,
                    f"secret {WEBHOOK_SECRET}",
                    "is not an http(s) URL",
                    "paste the URL of a receiver of Alertmanager's webhook JSON",
                )
            ]
        if url.hostname.endswith("hooks.slack.com"):
            # Slack answers Alertmanager's JSON with 400: every alert would be dropped.
            return [
                Problem(
                    name,
                    f"secret {WEBHOOK_SECRET}",
                    "is a Slack incoming webhook, which rejects Alertmanager's JSON",
                    "point it at a bridge that reads Alertmanager's webhook JSON",
                )
            ]
    return []


ROLE = Role(
    groups=("monitoring",),
    order=80,
    knob_prefixes=("monitoring_",),
    required_secrets=required_secrets,
    peer_groups=("db", "edge", "app"),
    check_host=_check_host,
    checks=(
        ("monitoring_prometheus_port", int_between(1024, 65535), "is not a TCP port", "use 9090"),
        ("monitoring_alertmanager_port", int_between(1024, 65535), "is not a TCP port", "use 9093"),
        ("monitoring_blackbox_port", int_between(1024, 65535), "is not a TCP port", "use 9115"),
        ("monitoring_retention_time", matches(DURATION), "is not a duration", 'e.g. "30d"'),
        (
            "monitoring_retention_size",
            matches(re.compile(r"^\d+(MB|GB|TB)$")),
            "is not a size",
            'e.g. "4GB"',
        ),
        (
            "monitoring_prometheus_memory_mb",
            int_between(128, 1_000_000),
            "is not a size in MB",
            "use 512",
        ),
        ("monitoring_scrape_interval", matches(DURATION), "is not a duration", 'e.g. "15s"'),
        ("monitoring_group_wait", matches(DURATION), "is not a duration", 'e.g. "30s"'),
        ("monitoring_group_interval", matches(DURATION), "is not a duration", 'e.g. "5m"'),
        ("monitoring_heartbeat_interval", matches(DURATION), "is not a duration", 'e.g. "1m"'),
        (
            "monitoring_repeat_interval",
            lambda v: (
                isinstance(v, dict)
                and set(v) == set(SEVERITIES)
                and all(matches(DURATION)(x) for x in v.values())
            ),
            "is not a duration per severity",
            '{"P0": "1h", "P1": "4h", "P2": "24h"}',
        ),
        (
            "monitoring_alert_email",
            lambda v: v == "" or matches(EMAIL)(v),
            "is not an e-mail address",
            'a mailbox, or "" for operator_email',
        ),
        (
            "monitoring_thresholds",
            _thresholds_ok,
            "is not the table of positive numbers it should be",
            "copy the default from operations/monitoring.py and change the numbers",
        ),
        (
            "monitoring_probe_path",
            matches(re.compile(r"^/[A-Za-z0-9._~/-]*$")),
            "is not a URL path",
            'e.g. "/health"',
        ),
    ),
)


def render_rules(thresholds: dict) -> str:
    """The alert and recording rules, thresholds from data."""
    return render("monitoring/etc/prometheus/rules/galion.yml.j2", t=thresholds)


def listen_address() -> str:
    """Prometheus and Alertmanager: loopback unless other monitoring hosts must reach them."""
    return topology.exporter_bind_address(inventory, host)


def _app_metrics_sources(inventory, this) -> list[tuple]:
    """(host, address) of each nginx that serves the apps' metrics to Prometheus on `this`:
    an app host's own (its app proxy, without the edge), or an edge on this very host."""
    edges = {h.name for h in topology.group(inventory, "edge")}
    sources = []
    for h in topology.group(inventory, "app"):
        if h.name not in edges:
            sources.append((h, topology.scrape_address(inventory, this, h)))
        elif h.name == this.name:
            sources.append((h, "127.0.0.1"))
    return sources


def scrape_jobs(inventory, this, probe_path: str, blackbox: str) -> list[dict]:
    """Prometheus' scrape_configs, from the inventory's groups: every host's node
    exporter, the data tier's exporters on `db`, nginx's on `edge`, Docker's engine on
    `app`, the apps' own metrics, Prometheus and Alertmanager themselves, and a blackbox
    probe of every public name (its certificate's expiry comes with it). Each target's
    `instance` is the inventory name of its host (or the URL of a probe)."""

    def job(name: str, groups: tuple | None, port_key: str) -> dict | None:
        hosts = (
            list(inventory)
            if groups is None
            else [h for g in groups for h in topology.group(inventory, g)]
        )
        targets = [
            {
                "targets": [
                    f"{topology.scrape_address(inventory, this, h)}:{h.data.get(port_key)}"
                ],
                "labels": {"instance": h.name},
            }
            for h in hosts
        ]
        return {"job_name": name, "static_configs": targets} if targets else None

    jobs = [
        job("node", None, "node_exporter_port"),
        job("postgres", ("db", "db_replica"), "postgres_exporter_port"),
        job("redis", ("db",), "redis_exporter_port"),
        job("nginx", ("edge",), "nginx_tls_exporter_port"),
    ]
    docker = [
        {"targets": [h.data.get("docker_metrics_address")], "labels": {"instance": h.name}}
        for h in topology.group(inventory, "app")
        # The engine's metrics listen on loopback (a daemon that must bind an address not
        # up yet at boot would not start): read only where Prometheus runs on the host.
        if h.data.get("docker_metrics_address") and h.name == this.name
    ]
    if docker:
        jobs.append({"job_name": "docker", "static_configs": docker})
    # The apps' own /metrics, through an nginx that follows the rollouts: the edge's
    # loopback status listener on the single box (Prometheus on the same host), each app
    # host's own (operations/app_proxy.py) in a fleet.
    apps = [
        {
            "targets": [f"{address}:{h.data.get('nginx_tls_status_port')}"],
            "labels": {
                "instance": h.name,
                "service": upstream,
                "__metrics_path__": f"/apps/{upstream}",
            },
        }
        for h, address in _app_metrics_sources(inventory, this)
        for upstream in h.data.get("nginx_tls_metrics_upstreams") or []
    ]
    if apps:
        jobs.append({"job_name": "apps", "static_configs": apps})
    for name, port_key in (
        ("prometheus", "monitoring_prometheus_port"),
        ("alertmanager", "monitoring_alertmanager_port"),
    ):
        jobs.append(
            {
                "job_name": name,
                "static_configs": [
                    {
                        "targets": [
                            f"{topology.scrape_address(inventory, this, h)}:{h.data.get(port_key)}"
                        ],
                        "labels": {"instance": h.name},
                    }
                    for h in topology.monitoring_hosts(inventory)
                ],
            }
        )
    urls = sorted(
        {
            f"https://{vhost['name']}{probe_path}"
            for h in topology.group(inventory, "edge")
            for vhost in h.data.get("nginx_tls_vhosts") or []
        }
    )
    if urls:
        jobs.append(
            {
                "job_name": "probe",
                "metrics_path": "/probe",
                "params": {"module": ["https_health"]},
                "static_configs": [{"targets": urls}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": blackbox},
                ],
            }
        )
    return [j for j in jobs if j]


def alertmanagers(inventory, this) -> list[str]:
    return [
        topology.scrape_address(inventory, this, h)
        + f":{h.data.get('monitoring_alertmanager_port')}"
        for h in topology.monitoring_hosts(inventory)
    ]


def prometheus_config(data, inventory, this) -> dict:
    blackbox = f"127.0.0.1:{data.monitoring_blackbox_port}"
    return {
        "global": {
            "scrape_interval": data.monitoring_scrape_interval,
            "evaluation_interval": data.monitoring_scrape_interval,
        },
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": alertmanagers(inventory, this)}]}]
        },
        "rule_files": [f"{RULES_DIR}/*.yml"],
        "scrape_configs": scrape_jobs(inventory, this, data.monitoring_probe_path, blackbox),
    }


def alertmanager_config(
    data, webhook_url: str | None, smtp_password: str | None, heartbeat_url: str | None = None
) -> dict:
    """Routes by severity: P0 and P1 to every receiver, P2 to e-mail only (or the webhook
    when there is no mail relay); the Watchdog heartbeat to the dead man's switch only
    (nowhere without one). Inhibition: a host that is down silences its other alerts."""
    email = None
    if data.get("base_mail_relay"):
        email = {
            "to": data.monitoring_alert_email or data.operator_email,
            "from": data.operator_email,
            "smarthost": data.get("base_mail_relay"),
            "auth_username": data.base_mail_relay_user,
            "auth_password": smtp_password,
            "require_tls": True,
            "send_resolved": True,
        }
    webhook = {"url": webhook_url, "send_resolved": True} if webhook_url else None

    def receiver(name: str, with_email: bool, with_webhook: bool) -> dict:
        r: dict = {"name": name}
        if with_email and email:
            r["email_configs"] = [email]
        if with_webhook and webhook:
            r["webhook_configs"] = [webhook]
        return r

    page = receiver("page", True, True)
    ticket = receiver("ticket", True, not email)
    heartbeat: dict = {"name": "heartbeat"}
    if heartbeat_url:
        heartbeat["webhook_configs"] = [{"url": heartbeat_url, "send_resolved": False}]
    routes = [
        {
            "matchers": ['severity="heartbeat"'],
            "receiver": "heartbeat",
            "group_wait": "0s",
            "group_interval": data.monitoring_heartbeat_interval,
            "repeat_interval": data.monitoring_heartbeat_interval,
        }
    ] + [
        {
            "matchers": [f'severity="{severity}"'],
            "receiver": "ticket" if severity == "P2" else "page",
            "repeat_interval": data.monitoring_repeat_interval[severity],
        }
        for severity in SEVERITIES
    ]
    return {
        "route": {
            "receiver": "page",
            "group_by": ["alertname", "instance"],
            "group_wait": data.monitoring_group_wait,
            "group_interval": data.monitoring_group_interval,
            "repeat_interval": data.monitoring_repeat_interval["P1"],
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="HostDown"'],
                "target_matchers": ['alertname!="HostDown"'],
                "equal": ["instance"],
            }
        ],
        "receivers": [page, ticket, heartbeat],
    }


def blackbox_config(ca_file: str | None) -> dict:
    tls = {"ca_file": ca_file} if ca_file else {}
    return {
        "modules": {
            "https_health": {
                "prober": "http",
                "timeout": "10s",
                "http": {
                    "valid_status_codes": [200],
                    "method": "GET",
                    "fail_if_not_ssl": True,
                    "preferred_ip_protocol": "ip4",
                    "tls_config": tls,
                },
            }
        }
    }


def _yaml(value: dict) -> str:
    """YAML the tools read (JSON is YAML), with the managed-by header."""
    return (
        "# Managed by galion-infra (operations/monitoring.py).\n"
        + json.dumps(value, indent=2)
        + "\n"
    )


def _packages():
    # Debian 13 ships promtool in its own package; Debian 12 has it in prometheus.
    promtool = ["promtool"] if host.get_fact(AptCandidate, package="promtool") else []
    return apt.packages(
        name="Install Prometheus, Alertmanager and the blackbox exporter",
        packages=[
            "prometheus",
            "prometheus-alertmanager",
            "prometheus-blackbox-exporter",
            *promtool,
        ],
        no_recommends=True,
        update=True,
        cache_time=3600,
    )


def _prometheus():
    data = host.data
    listen = listen_address()
    files.directory(name="Alert rules directory", path=RULES_DIR, mode="755")
    rules = config_file(
        name="Alert and recording rules (promtool check rules)",
        dest=f"{RULES_DIR}/galion.yml",
        content=render_rules(data.monitoring_thresholds),
        validate="promtool check rules {staged}",
    )
    conf = config_file(
        name="Prometheus: scrape targets from the inventory (promtool check config)",
        dest=PROMETHEUS_YML,
        content=_yaml(prometheus_config(data, inventory, host)),
        validate="promtool check config {staged}",
    )
    limits = config_file(
        name=f"Prometheus' memory cap ({data.monitoring_prometheus_memory_mb} MB)",
        dest="/etc/systemd/system/prometheus.service.d/galion.conf",
        content=render(
            "monitoring/etc/systemd/system/prometheus.service.d/galion.conf.j2",
            memory_mb=data.monitoring_prometheus_memory_mb,
        ),
    )
    args = config_file(
        name="Prometheus: listen address and retention",
        dest="/etc/default/prometheus",
        content=exporters.default_file(
            [
                f"--config.file={PROMETHEUS_YML}",
                f"--web.listen-address={listen}:{data.monitoring_prometheus_port}",
                f"--storage.tsdb.retention.time={data.monitoring_retention_time}",
                f"--storage.tsdb.retention.size={data.monitoring_retention_size}",
            ]
        ),
    )
    systemd.daemon_reload(name="systemd reads Prometheus' memory cap", _if=limits.did_change)
    _apply(
        "Prometheus",
        "prometheus",
        restart=any_changed(limits, args),
        reload=any_changed(rules, conf),
    )


def _alertmanager():
    data = host.data
    listen = listen_address()
    webhook = secrets.get(WEBHOOK_SECRET) if data.monitoring_webhook_enabled else None
    smtp = secrets.get("SMTP_RELAY_PASSWORD") if data.get("base_mail_relay") else None
    heartbeat = secrets.get(HEARTBEAT_SECRET) if data.monitoring_heartbeat_enabled else None
    conf = config_file(
        name="Alertmanager: receivers and routes by severity (secret, amtool check-config)",
        dest=ALERTMANAGER_YML,
        group="prometheus",
        mode="640",
        secret=True,
        content=_yaml(alertmanager_config(data, webhook, smtp, heartbeat)),
        validate=AMTOOL_CHECK,
    )
    args = config_file(
        name="Alertmanager: listen address, no cluster port",
        dest="/etc/default/prometheus-alertmanager",
        content=exporters.default_file(
            [
                f"--config.file={ALERTMANAGER_YML}",
                f"--web.listen-address={listen}:{data.monitoring_alertmanager_port}",
                "--cluster.listen-address=",
            ]
        ),
    )
    _apply(
        "Alertmanager", "prometheus-alertmanager", restart=args.did_change, reload=conf.did_change
    )


def _apply(title: str, unit: str, restart, reload):
    """A restart when its flags or unit changed, else a reload (SIGHUP, no gap in the
    scrapes or the notifications) when its config changed; either way a check that it
    still runs, and running at boot."""
    server.shell(
        name=f"Restart {title} (its flags changed)",
        commands=[exporters.restart_command(unit)],
        _if=restart,
    )
    systemd.service(
        name=f"Reload {title} (its config changed)",
        service=unit,
        reloaded=True,
        _if=lambda: reload() and not restart(),
    )
    server.shell(
        name=f"{title} came back up",
        commands=[exporters.started_check(unit)],
        _if=lambda: reload() or restart(),
    )
    systemd.service(name=f"{title} runs at boot", service=unit, running=True, enabled=True)


def _blackbox():
    data = host.data
    ca = None
    if data.monitoring_probe_ca_bundle:
        local_file(
            name="CAs the probes trust",
            src=data.monitoring_probe_ca_bundle,
            dest=PROBE_CA,
            mode="644",
        )
        ca = PROBE_CA
    conf = config_file(
        name="Blackbox exporter: the HTTPS health probe",
        dest=BLACKBOX_YML,
        content=_yaml(blackbox_config(ca)),
        validate="prometheus-blackbox-exporter --config.check --config.file={staged}",
    )
    exporters.exporter(
        "blackbox exporter",
        "prometheus-blackbox-exporter",
        [
            f"--config.file={BLACKBOX_YML}",
            f"--web.listen-address=127.0.0.1:{data.monitoring_blackbox_port}",
        ],
        restart_if=conf.did_change,
    )


@deploy("Monitoring: Prometheus, Alertmanager, probes")
def monitoring():
    _packages()
    _blackbox()
    _alertmanager()
    _prometheus()
