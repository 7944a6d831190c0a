"""The monitoring role without hosts: every alert rule proven by promtool (firing when it
should, silent for a healthy neighbour and before its `for`), Prometheus' config and
Alertmanager's routes checked by promtool and amtool, scrape targets from the groups.

promtool and amtool come from Debian's packages (scripts/install.sh puts them in
.venv/bin); the rules are rendered from the role's default thresholds.
"""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from galion import role
from galion.ops.files import validate_command
from operations import monitoring
from operations.monitoring.alertmanager import AMTOOL_CHECK, alertmanager_config
from operations.monitoring.checks import check_host
from operations.monitoring.prometheus import prometheus_config, render_rules
from operations.monitoring.targets import scrape_jobs

BIN = Path(sys.executable).parent
THRESHOLDS = monitoring.KNOBS["monitoring_thresholds"].default
BACKUP = "galion_backup_last_success_timestamp_seconds"


def tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / name), *args], cwd=cwd, text=True, capture_output=True, check=False
    )


def rules_text() -> str:
    return render_rules(THRESHOLDS)


def alert_names() -> set[str]:
    return set(re.findall(r"^\s+- alert: (\w+)$", rules_text(), re.M))


# One case per alert, written by hand in monitoring_alert_cases.toml (its top says what
# `series`, `silent`, `firing` and `labels` are): a table of data, not code.
CASES = tomllib.loads((Path(__file__).parent / "monitoring_alert_cases.toml").read_text())


def _labels(alert: str, labels: dict) -> str:
    severity = re.search(
        rf"- alert: {alert}\n(?:.*\n)*?\s+labels: {{severity: (\w+)}}", rules_text()
    ).group(1)
    every = {"alertname": alert, "alertstate": "firing", "severity": severity, **labels}
    return "ALERTS{" + ",".join(f'{k}="{v}"' for k, v in sorted(every.items())) + "}"


def promtool_tests(slow: bool = False) -> dict:
    """promtool's test file: the cases spanning days (`slow`) in their own file, evaluated
    every 10 minutes instead of every minute (promtool evaluates every rule each time)."""
    tests = []
    for alert, case in CASES.items():
        if case.get("slow", False) != slow:
            continue
        firing = f'ALERTS{{alertname="{alert}",alertstate="firing"}}'
        tests.append(
            {
                "name": alert,
                "interval": case.get("interval", "1m"),
                "input_series": [{"series": s, "values": v} for s, v in case["series"].items()],
                "promql_expr_test": [
                    {"expr": firing, "eval_time": case["silent"], "exp_samples": []},
                    {
                        "expr": firing,
                        "eval_time": case["firing"],
                        "exp_samples": [{"labels": _labels(alert, case["labels"]), "value": 1}],
                    },
                ],
            }
        )
    if slow:
        return {"rule_files": ["galion.yml"], "evaluation_interval": "10m", "tests": tests}
    # The recording rules a person reads: one case each for the backup age and CPU.
    tests.append(
        {
            "name": "recording rules",
            "interval": "1m",
            "input_series": [
                {
                    "series": BACKUP + '{instance="db",repo="repo1",type="full"}',
                    "values": "0x130",
                },
                {
                    "series": 'node_cpu_seconds_total{cpu="0",mode="idle",instance="a"}',
                    "values": "0+15x20",
                },
            ],
            "promql_expr_test": [
                {
                    "expr": "repo:backup_age:hours",
                    "eval_time": "2h",
                    "exp_samples": [
                        {"labels": 'repo:backup_age:hours{instance="db",repo="repo1"}', "value": 2}
                    ],
                },
                {
                    "expr": "instance:cpu_busy:percent",
                    "eval_time": "10m",
                    "exp_samples": [
                        {"labels": 'instance:cpu_busy:percent{instance="a"}', "value": 75}
                    ],
                },
            ],
        }
    )
    return {
        "rule_files": ["galion.yml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }


def test_every_alert_has_a_firing_and_a_silent_case():
    # The Watchdog has no silent case: it fires always (its own test below).
    assert alert_names() == set(CASES) | {"Watchdog"}


def test_the_watchdog_always_fires(tmp_path):
    (tmp_path / "galion.yml").write_text(rules_text())
    firing = 'ALERTS{alertname="Watchdog",alertstate="firing"}'
    tests = {
        "rule_files": ["galion.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [],
                "promql_expr_test": [
                    {
                        "expr": firing,
                        "eval_time": t,
                        "exp_samples": [{"labels": _labels("Watchdog", {}), "value": 1}],
                    }
                    for t in ("0m", "10m")
                ],
            }
        ],
    }
    (tmp_path / "t.yml").write_text(json.dumps(tests))
    proc = tool("promtool", "test", "rules", "t.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rules_pass_promtool_check(tmp_path):
    (tmp_path / "galion.yml").write_text(rules_text())
    proc = tool("promtool", "check", "rules", "galion.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("slow", [False, True], ids=["minutes", "days"])
def test_the_rules_pass_their_promtool_tests(tmp_path, slow):
    (tmp_path / "galion.yml").write_text(rules_text())
    (tmp_path / "galion.test.yml").write_text(json.dumps(promtool_tests(slow), indent=1))
    proc = tool("promtool", "test", "rules", "galion.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_rule_that_cannot_fire_fails_its_promtool_test(tmp_path):
    """The tests can fail: PostgresDown with an impossible threshold fails its case."""
    rule = "last_over_time(pg_up[1m]) == 0"
    assert rule in rules_text()
    (tmp_path / "galion.yml").write_text(rules_text().replace(rule, rule[:-1] + "2"))
    (tmp_path / "galion.test.yml").write_text(json.dumps(promtool_tests(), indent=1))
    proc = tool("promtool", "test", "rules", "galion.test.yml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "PostgresDown" in proc.stdout + proc.stderr


# --- scrape targets, Prometheus' and Alertmanager's configs -----------------------------


class Inventory:
    def __init__(self, **groups):
        self.groups = groups

    def get_group(self, name, default=None):
        return self.groups.get(name, default)

    def __iter__(self):
        seen = {}
        for hosts in self.groups.values():
            for h in hosts:
                seen.setdefault(h.name, h)
        return iter(seen.values())


DATA = {
    "node_exporter_port": 9100,
    "postgres_exporter_port": 9187,
    "redis_exporter_port": 9121,
    "nginx_tls_exporter_port": 9113,
    "docker_metrics_address": "127.0.0.1:9323",
    "nginx_tls_status_port": 8081,
    "nginx_tls_metrics_upstreams": ["galion_api", "studio_api"],
    "monitoring_prometheus_port": 9090,
    "monitoring_alertmanager_port": 9093,
    "nginx_tls_vhosts": [{"name": "galion.app"}, {"name": "api.galion.app"}],
}


def host(name, **data):
    return SimpleNamespace(name=name, data={**DATA, **data})


def targets(jobs) -> dict[str, list[str]]:
    return {
        j["job_name"]: sorted(t for c in j["static_configs"] for t in c["targets"]) for j in jobs
    }


def test_single_box_scrapes_everything_over_loopback():
    box = host("titanaxe", ssh_hostname="54.37.161.67")
    inv = Inventory(app=[box], db=[box], edge=[box], backups=[box], monitoring=[box])
    jobs = scrape_jobs(inv, box, "/health", "127.0.0.1:9115")
    assert targets(jobs) == {
        "node": ["127.0.0.1:9100"],
        "postgres": ["127.0.0.1:9187"],
        "redis": ["127.0.0.1:9121"],
        "nginx": ["127.0.0.1:9113"],
        "docker": ["127.0.0.1:9323"],
        "apps": ["127.0.0.1:8081", "127.0.0.1:8081"],
        "prometheus": ["127.0.0.1:9090"],
        "alertmanager": ["127.0.0.1:9093"],
        "probe": ["https://api.galion.app/health", "https://galion.app/health"],
    }
    apps = next(j for j in jobs if j["job_name"] == "apps")["static_configs"]
    assert [(c["labels"]["service"], c["labels"]["__metrics_path__"]) for c in apps] == [
        ("galion_api", "/apps/galion_api"),
        ("studio_api", "/apps/studio_api"),
    ]
    # A person reads host names, not addresses.
    assert {c["labels"]["instance"] for j in jobs[:5] for c in j["static_configs"]} == {"titanaxe"}


def test_fleet_scrapes_each_host_on_its_private_address():
    edge = host("edge1", ssh_hostname="203.0.113.1", private_address="10.0.0.1")
    app1 = host("app1", ssh_hostname="203.0.113.2", private_address="10.0.0.2")
    db1 = host("db1", ssh_hostname="203.0.113.4", private_address="10.0.0.4")
    mon = host("mon1", ssh_hostname="203.0.113.6", private_address="10.0.0.6")
    inv = Inventory(edge=[edge], app=[app1], db=[db1], backups=[db1], monitoring=[mon])
    got = targets(scrape_jobs(inv, mon, "/health", "127.0.0.1:9115"))
    # The monitoring host's own exporters answer only itself: loopback.
    assert got["node"] == ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.4:9100", "127.0.0.1:9100"]
    assert got["postgres"] == ["10.0.0.4:9187"]
    assert got["nginx"] == ["10.0.0.1:9113"]
    assert got["prometheus"] == ["127.0.0.1:9090"]
    assert got["alertmanager"] == ["127.0.0.1:9093"]
    # The apps' metrics from each app host's own nginx (its app proxy), per upstream.
    assert got["apps"] == ["10.0.0.2:8081", "10.0.0.2:8081"]
    assert "docker" not in got  # the engine's metrics stay on the app host's loopback


def test_fleet_scrapes_the_replica_s_postgres_exporter():
    db1 = host("db1", private_address="10.0.0.4")
    db2 = host("db2", private_address="10.0.0.5")
    mon = host("mon1", private_address="10.0.0.6")
    inv = Inventory(db=[db1], db_replica=[db2], monitoring=[mon])
    got = targets(scrape_jobs(inv, mon, "/health", "127.0.0.1:9115"))
    assert got["postgres"] == ["10.0.0.4:9187", "10.0.0.5:9187"]
    assert got["redis"] == ["10.0.0.4:9121"]


def _config_data(**more):
    return SimpleNamespace(
        monitoring_scrape_interval="15s",
        monitoring_blackbox_port=9115,
        monitoring_probe_path="/health",
        monitoring_group_wait="30s",
        monitoring_group_interval="5m",
        monitoring_repeat_interval={"P0": "1h", "P1": "4h", "P2": "24h"},
        monitoring_heartbeat_interval="1m",
        monitoring_alert_email="",
        operator_email="ops@galion.app",
        base_mail_relay_user="galion",
        base_mail_relay=more.get("base_mail_relay", ""),
        get=lambda key, default=None: more.get(key, default),
    )


def test_prometheus_config_passes_promtool(tmp_path):
    box = host("titanaxe", ssh_hostname="54.37.161.67")
    inv = Inventory(app=[box], db=[box], edge=[box], monitoring=[box])
    config = prometheus_config(_config_data(), inv, box)
    (tmp_path / "rules").mkdir()
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]
    (tmp_path / "rules" / "galion.yml").write_text(rules_text())
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    proc = tool("promtool", "check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _routes(tmp_path, config: dict, *labels: str) -> str:
    path = tmp_path / "alertmanager.yml"
    path.write_text(json.dumps(config))
    check = tool("amtool", "check-config", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
    proc = tool("amtool", "config", "routes", "test", f"--config.file={path}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(
    "severity, receiver, email, webhook",
    [("P0", "page", True, True), ("P1", "page", True, True), ("P2", "ticket", True, False)],
)
def test_alerts_reach_receivers_by_severity(tmp_path, severity, receiver, email, webhook):
    data = _config_data(base_mail_relay="smtp.example.com:587")
    config = alertmanager_config(data, "https://hooks.example.com/x", "pw")
    assert _routes(tmp_path, config, f"severity={severity}", "alertname=X") == receiver
    got = next(r for r in config["receivers"] if r["name"] == receiver)
    assert ("email_configs" in got, "webhook_configs" in got) == (email, webhook)


def test_without_a_mail_relay_every_severity_reaches_the_webhook(tmp_path):
    config = alertmanager_config(_config_data(), "https://hooks.example.com/x", None)
    for severity in ("P0", "P1", "P2"):
        receiver = _routes(tmp_path, config, f"severity={severity}")
        got = next(r for r in config["receivers"] if r["name"] == receiver)
        assert "webhook_configs" in got and "email_configs" not in got


def test_the_grafana_dashboard_reads_only_proven_names():
    """Every panel of the shipped dashboard reads a recording rule or a metric the alert
    rules read (which the contract test proves exists on real hosts)."""
    from tests.roles.test_monitoring import metric_names

    path = Path(__file__).resolve().parents[2] / "files/monitoring/grafana-galion-overview.json"
    dashboard = json.loads(path.read_text())
    text = rules_text()
    recorded = set(re.findall(r"- record: (\S+)", text))
    read = set().union(*(metric_names(e) for e in re.findall(r"expr: (.+)", text)))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        assert metric_names(expr) <= recorded | read | {"ALERTS"}, expr


def test_every_default_passes_its_check_and_a_typo_does_not():
    for key, check, *_ in role.checks(monitoring):
        assert check(monitoring.KNOBS[key].default), key
    bad = {
        "monitoring_retention_time": "30 days",
        "monitoring_retention_size": "4G",
        "monitoring_scrape_interval": "15",
        "monitoring_repeat_interval": {"P0": "1h", "P1": "4h"},
        "monitoring_alert_email": "ops@",
        "monitoring_thresholds": {**THRESHOLDS, "cpu_percent": "80"},
        "monitoring_probe_path": "health",
    }
    for key, check, *_ in role.checks(monitoring):
        if key in bad:
            assert not check(bad[key]), key


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://alerts.example.com/hook/XXXXXXXXXXXXXXXX", True),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", False),
        ("http://10.77.0.1:9099/alerts-xxxxxxxx", True),
        ("hooks.slack.com/services/T000/B000/XXXXXXXX", False),
        ("Kga36U0G9bzGEeIHPflIxHcd60oxoeaj", False),
        # A typo in the port: amtool refuses it on the host, with the secret in its message.
        ("http://alerts.example.com:8o80/hook-xxxxxxxxxx", False),
    ],
)
def test_preflight_wants_the_webhook_secret_to_be_a_url(monkeypatch, url, ok):
    from galion import secrets

    monkeypatch.setenv("ALERTMANAGER_WEBHOOK_URL", url)
    secrets.reset_cache()
    try:
        data = {"monitoring_webhook_enabled": True, "base_mail_relay": ""}
        problems = check_host("box", SimpleNamespace(get=data.get), {"monitoring"})
    finally:
        monkeypatch.undo()
        secrets.reset_cache()
    assert (problems == []) == ok, problems


def test_the_heartbeat_goes_to_the_dead_mans_switch_only(tmp_path):
    data = _config_data(base_mail_relay="smtp.example.com:587")
    with_switch = alertmanager_config(data, "https://a.example/x", "pw", "https://hc.example/p")
    assert _routes(tmp_path, with_switch, "severity=heartbeat", "alertname=Watchdog") == "heartbeat"
    receiver = next(r for r in with_switch["receivers"] if r["name"] == "heartbeat")
    assert receiver == {
        "name": "heartbeat",
        "webhook_configs": [{"url": "https://hc.example/p", "send_resolved": False}],
    }
    # Without a switch the Watchdog goes nowhere: it never pages a person.
    without = alertmanager_config(data, "https://a.example/x", "pw")
    assert _routes(tmp_path, without, "severity=heartbeat", "alertname=Watchdog") == "heartbeat"
    assert {"name": "heartbeat"} in without["receivers"]


def test_amtool_refusal_is_shown_without_the_urls_it_quotes(tmp_path):
    """The converge shows why amtool refused the config, never the webhook URL."""
    staged = tmp_path / "alertmanager.yml"
    staged.write_text(
        "route: {receiver: hook}\nreceivers:\n- name: hook\n  webhook_configs:\n"
        "  - url: HTTP://alerts.example.com:8o80/hook-SECRETTOKEN\n"
    )
    command = validate_command(AMTOOL_CHECK, str(staged), "/etc/x")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    done = subprocess.run(
        command.get_raw_value(), shell=True, capture_output=True, text=True, env=env
    )
    assert done.returncode != 0
    assert 'invalid port ":8o80"' in done.stderr and "<URL hidden>" in done.stderr
    assert "SECRETTOKEN" not in done.stdout + done.stderr
