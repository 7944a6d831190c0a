"""Prometheus: the scrape targets and the alert rules (each checked by promtool before
it goes live), its memory cap, its flags; a reload for a new config, a restart only for
new flags."""

from pyinfra import host, inventory
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from galion.ops import config_file, render

from . import daemons
from .targets import alertmanagers, scrape_jobs

RULES_DIR = "/etc/prometheus/rules"
PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"


def render_rules(thresholds: dict) -> str:
    """The alert and recording rules, thresholds from data."""
    return render("monitoring/etc/prometheus/rules/galion.yml.j2", t=thresholds)


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


def targets_and_rules():
    """The rules and the config reload Prometheus; its memory cap and flags restart it."""
    data = host.data
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
        content=daemons.yaml_file(prometheus_config(data, inventory, host)),
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
    args = daemons.flags_file(
        "Prometheus: listen address and retention",
        "prometheus",
        PROMETHEUS_YML,
        data.monitoring_prometheus_port,
        f"--storage.tsdb.retention.time={data.monitoring_retention_time}",
        f"--storage.tsdb.retention.size={data.monitoring_retention_size}",
    )
    systemd.daemon_reload(name="systemd reads Prometheus' memory cap", _if=limits.did_change)
    daemons.apply(
        "Prometheus",
        "prometheus",
        restart=any_changed(limits, args),
        reload=any_changed(rules, conf),
    )
