"""Monitoring on `monitoring` hosts, checked live (operations/monitoring/): every target
generated from the groups is up, every metric name the rules use exists in a real scrape
of this distro's exporters (the contract), nothing answers from another machine."""

import json
import re
import shlex
import time
import urllib.parse

import pytest

from tests.inventory import in_group, nodes

GROUP = "monitoring"
# Written by galion-restore-drill when a drill has run (the weekly timer, or the
# restore drill tests in tests/sandbox): absent from a freshly converged host.
AFTER_THE_FIRST_DRILL = {
    "galion_restore_drill_success",
    "galion_restore_drill_last_run_timestamp_seconds",
}
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "time",
    "inf",
    "nan",
}


def http_get(url: str, timeout: int) -> str:
    """A command that prints the body of a GET on the host (python3: a host without
    the edge or the apps has no curl)."""
    script = (
        "import urllib.request; "
        f"print(urllib.request.urlopen({url!r}, timeout={timeout}).read().decode())"
    )
    return f"python3 -c {shlex.quote(script)}"


def api(node, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{node.data['monitoring_prometheus_port']}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    body = json.loads(node.host.check_output(http_get(url, 10)))
    assert body["status"] == "success", body
    return body["data"]


def query(node, promql: str) -> list[dict]:
    return api(node, "query", query=promql)["result"]


def wanted_jobs(node) -> set[str]:
    """The jobs the inventory's groups call for (on one box, or across a fleet); Docker's
    engine metrics are on loopback, so only where Prometheus runs on an app host."""
    everywhere = set().union(*(n.groups for n in nodes()))
    wanted = {"node", "prometheus", "alertmanager"}
    wanted |= {"postgres"} if everywhere & {"db", "db_replica"} else set()
    wanted |= {"redis"} if "db" in everywhere else set()
    wanted |= {"nginx", "probe"} if "edge" in everywhere else set()
    wanted |= (
        {"apps"} if "app" in everywhere and node.data["nginx_tls_metrics_upstreams"] else set()
    )
    wanted |= {"docker"} if "app" in node.groups else set()
    return wanted


def scraped_targets(node, timeout: float = 60) -> list[dict]:
    """Active targets once each has been scraped at least once (a reload, which the
    converge only signals, may still be applying a new target list)."""
    deadline = time.monotonic() + timeout
    while True:
        targets = api(node, "targets")["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        scraped = all(t["health"] != "unknown" for t in targets)
        if (scraped and jobs == wanted_jobs(node)) or time.monotonic() > deadline:
            return targets
        time.sleep(2)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping labels,
    ranges, strings, functions and keywords removed)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[m.end() :].lstrip()[:1]
        if following != "(" and m.group(0).lower() not in PROMQL_WORDS:
            names.add(m.group(0))
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names(
        '100 * sum by (instance) (pg_stat_activity_count{state="x"}) '
        "/ max by (instance) (pg_settings_max_connections) > 80"
    ) == {"pg_stat_activity_count", "pg_settings_max_connections"}
    assert metric_names("increase(redis_evicted_keys_total[10m]) > 0 and on (i) up") == {
        "redis_evicted_keys_total",
        "up",
    }


def test_every_generated_target_is_up(node):
    targets = scraped_targets(node)
    down = {
        (t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"
    }
    assert not down, down
    assert {t["labels"]["job"] for t in targets} == wanted_jobs(node)
    # A person reads host names: every host target is labelled with its inventory name.
    hosts = {t["labels"]["instance"] for t in targets if t["labels"]["job"] != "probe"}
    assert hosts == {n.name for n in nodes()}


def test_every_public_name_passes_its_https_probe(node):
    if not in_group("edge"):
        pytest.skip("no edge in the inventory")
    names = {v["name"] for v in in_group("edge")[0].data["nginx_tls_vhosts"]}
    deadline = time.monotonic() + 30
    while True:
        results = {r["metric"]["instance"]: r["value"][1] for r in query(node, "probe_success")}
        if set(results.values()) == {"1"} or time.monotonic() > deadline:
            break
        time.sleep(2)
    path = node.data["monitoring_probe_path"]
    assert results == {f"https://{n}{path}": "1" for n in names}
    # The certificate's expiry comes with the probe: the CertificateExpiring rule's input.
    expiry = query(node, "probe_ssl_earliest_cert_expiry - time()")
    assert len(expiry) == len(names) and all(float(r["value"][1]) > 86400 for r in expiry)


def test_every_metric_a_rule_reads_exists_in_a_real_scrape(node):
    """The contract: rule sets break when exporter versions rename metrics (Debian 12 and
    13 ship different ones). Every name the loaded rules read is in Prometheus' own list
    of names it scraped (or a recording rule's)."""
    scraped_targets(node)
    groups = api(node, "rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["name"] for r in rules if r["type"] == "recording"}
    used = set().union(*(metric_names(r["query"]) for r in rules)) - recorded
    assert len([r for r in rules if r["type"] == "alerting"]) >= 25
    deadline = time.monotonic() + 60
    while True:  # the textfile metrics come from timers: at most one period late
        known = set(api(node, "label/__name__/values"))
        missing = used - known - AFTER_THE_FIRST_DRILL
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not missing, sorted(missing)
    # The drill's names are the ones its script writes.
    backups = in_group("backups")[0]  # where the drill runs
    drill = backups.host.file("/usr/local/sbin/galion-restore-drill").content_string
    assert all(name in drill for name in AFTER_THE_FIRST_DRILL)


def test_container_metrics_show_each_service_with_its_limit(node):
    if "app" not in node.groups:
        pytest.skip("no app containers on this host")
    # Our scrape of this host only: Debian's package first starts Prometheus with its own
    # config (job "node", instance "localhost:9100"), and those series stay visible for
    # the 5 min lookback after the converge's restart, which writes no stale markers.
    ours = f'job="node",instance="{node.name}"'
    deadline = time.monotonic() + 60
    while True:
        limits = {
            r["metric"]["service"]: int(float(r["value"][1]))
            for r in query(node, f"galion_container_memory_limit_bytes{{{ours}}}")
        }
        if len(limits) == len(node.data["apps_services"]) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert limits == {s["name"]: s["memory_mb"] * 1024 * 1024 for s in node.data["apps_services"]}
    used = query(node, f"galion_container_memory_usage_bytes{{{ours}}} > 0")
    assert sorted(r["metric"]["service"] for r in used) == sorted(limits)


def test_configs_pass_the_tools_on_the_host(node):
    node.host.check_output("promtool check config /etc/prometheus/prometheus.yml")
    node.host.check_output("promtool check rules /etc/prometheus/rules/galion.yml")
    node.host.check_output("amtool check-config /etc/prometheus/alertmanager.yml")


def test_alertmanager_config_is_readable_by_its_service_only(node):
    conf = node.host.file("/etc/prometheus/alertmanager.yml")
    assert (conf.user, conf.group, conf.mode) == ("root", "prometheus", 0o640)
    # Files holding the exporters' passwords: root only.
    if "db" not in node.groups:
        return
    secret_files = [
        "/etc/default/prometheus-postgres-exporter",
        "/etc/default/prometheus-redis-exporter",
        "/etc/galion/pgbouncer-metrics.env",
    ]
    for path in secret_files:
        f = node.host.file(path)
        assert (f.exists, f.user, f.mode) == (True, "root", 0o600), path


MONITORING_PORTS = {
    "node_exporter_port": "node exporter",
    "postgres_exporter_port": "postgres exporter",
    "redis_exporter_port": "redis exporter",
    "nginx_tls_exporter_port": "nginx exporter",
    "monitoring_prometheus_port": "Prometheus",
    "monitoring_alertmanager_port": "Alertmanager",
    "monitoring_blackbox_port": "blackbox exporter",
}


def test_nothing_answers_from_another_machine(node, probe):
    """Single box: every exporter, Prometheus and Alertmanager listen on loopback only,
    and none answers a probe from another host (nor Alertmanager's cluster port)."""
    ports = {node.data[k]: what for k, what in MONITORING_PORTS.items()}
    ports[9094] = "Alertmanager's cluster port"
    listeners = node.host.check_output("ss -Htln").splitlines()
    for line in listeners:
        address, port = line.split()[3].rsplit(":", 1)
        if int(port) in ports:
            assert address in ("127.0.0.1", "[::1]"), (ports[int(port)], line)
    answers = probe.tcp_ports(node.address, sorted(ports), timeout=1)
    for port, what in ports.items():
        assert answers[port] != "open", what


def test_exporters_come_back_by_themselves(node):
    """Debian's units give up after a few quick failures (the nginx exporter started
    before nginx at boot): ours restart always, with no start limit."""
    units = ["prometheus-node-exporter", "prometheus-blackbox-exporter"]
    units += (
        ["prometheus-postgres-exporter", "prometheus-redis-exporter"] if "db" in node.groups else []
    )
    units += ["prometheus-nginx-exporter"] if "edge" in node.groups else []
    for unit in units:
        shown = node.host.check_output(
            f"systemctl show -p Restart -p StartLimitIntervalUSec {unit}"
        )
        assert "Restart=always" in shown and "StartLimitIntervalUSec=0" in shown, (unit, shown)
    # Killed: back within RestartSec (5 s) and answering again.
    node.host.check_output("systemctl kill -s KILL prometheus-node-exporter")
    port = node.data["node_exporter_port"]
    # Loopback where this is the only monitoring host (it alone scrapes them).
    others = [n for n in in_group("monitoring") if n.name != node.name]
    address = node.data["private_address"] if others else "127.0.0.1"
    for _ in range(30):
        if node.host.run(http_get(f"http://{address}:{port}/metrics", 2)).rc == 0:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"node exporter not answering on {address}:{port}")
    assert node.host.service("prometheus-node-exporter").is_running
