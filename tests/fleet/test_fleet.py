"""The split fleet (python -m sandbox up --topology fleet): the same roles, converged on
an edge, two app hosts, a PostgreSQL primary and its streaming replica and a monitoring
host. After `python -m sandbox.converge bootstrap` on that topology:

    pytest tests/fleet
"""

import time

import pytest

from sandbox import converge
from tests.inventory import nodes
from tests.load import Load


@pytest.fixture(scope="module")
def fleet():
    from sandbox import state

    try:
        if state.load()["topology"] != "fleet":
            pytest.skip("needs the fleet: python -m sandbox up --topology fleet")
    except state.SandboxNotUp:
        pytest.skip("needs the fleet: python -m sandbox up --topology fleet")
    return {n.name: n for n in nodes()}


def sql(node, query: str, database: str = "postgres") -> str:
    out = node.host.run(f'sudo -u postgres psql -X -At -d {database} -c "{query}"')
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def reach(node, address: str, port: int) -> str:
    """From `node`: "open", "refused" (let through, nothing listens) or "filtered"."""
    out = node.host.run(f"timeout 1.5 bash -c 'exec 3<>/dev/tcp/{address}/{port}' 2>&1; echo rc=$?")
    if "rc=0" in out.stdout:
        return "open"
    if "refused" in out.stdout:
        return "refused"
    return "filtered"


def test_second_converge_of_the_whole_fleet_changes_nothing(fleet):
    result = converge.converge().check()
    assert result.changed == []


def test_the_replica_streams_and_serves_what_the_primary_wrote(fleet):
    primary, replica = fleet["db1"], fleet["db2"]
    state = sql(primary, "select application_name, state from pg_stat_replication")
    assert state == "galion_db2|streaming"
    assert sql(replica, "select pg_is_in_recovery()") == "t"
    marker = f"fleet-{time.time_ns()}"
    sql(primary, "create table if not exists galion_fleet_check (v text)", "galion")
    sql(primary, f"insert into galion_fleet_check values ('{marker}')", "galion")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            sql(replica, f"select count(*) from galion_fleet_check where v = '{marker}'", "galion")
            == "1"
        ):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the row written on the primary never reached the replica")
    # Writes are refused on the replica.
    out = replica.host.run(
        "sudo -u postgres psql -X -At -d galion -c \"insert into galion_fleet_check values ('x')\""
    )
    assert out.rc != 0 and "read-only" in out.stderr


def test_the_apps_write_to_the_primary_and_read_from_the_replica(fleet):
    app1 = fleet["app1"]
    env = app1.host.run(f"sudo cat {app1.data['app_env_dir']}/galion.env").stdout
    urls = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    db1, db2 = fleet["db1"].data["private_address"], fleet["db2"].data["private_address"]
    assert f"@{db1}:" in urls["DATABASE_URL"] and f"@{db1}:" in urls["REDIS_URL"]
    assert f"@{db2}:" in urls["DATABASE_READ_URL"]


def test_replay_lag_stays_under_a_second_under_pgbench_load(fleet):
    primary = fleet["db1"]
    bench = "/usr/lib/postgresql/*/bin/pgbench"
    out = primary.host.run(
        "sudo -u postgres dropdb --if-exists galion_bench && sudo -u postgres createdb galion_bench"
        f" && sudo -u postgres {bench} -q -i -s 5 galion_bench"
    )
    assert out.rc == 0, out.stderr
    run = primary.host.run(
        f"(sudo -u postgres {bench} -c 4 -j 2 -T 15 -n galion_bench > /tmp/pgbench.out 2>&1 &); "
        "for i in $(seq 1 26); do sleep 0.5; sudo -u postgres psql -X -At -c "
        '"select coalesce(extract(epoch from replay_lag), 0) from pg_stat_replication"; done'
    )
    lags = [float(x) for x in run.stdout.split()]
    time.sleep(5)
    summary = primary.host.run("cat /tmp/pgbench.out").stdout
    primary.host.run("sudo -u postgres dropdb --if-exists galion_bench")
    assert "tps" in summary, summary
    assert lags and max(lags) < 1.0, lags


# (from, to, port key, expected): only the intended peers reach each service.
def _matrix(fleet):
    port = lambda key: fleet["db1"].data[key]  # noqa: E731
    app_port = fleet["app1"].data["nginx_upstream_ports"]["galion_api"]
    return [
        ("edge1", "db1", port("postgres_port"), "filtered"),
        ("edge1", "db1", port("pgbouncer_port"), "filtered"),
        ("edge1", "db1", port("redis_port"), "filtered"),
        ("app1", "db1", port("pgbouncer_port"), "open"),
        ("app1", "db1", port("redis_port"), "open"),
        ("app1", "db1", port("postgres_port"), "filtered"),
        ("app1", "db2", port("pgbouncer_port"), "open"),
        ("app1", "db2", port("postgres_port"), "filtered"),
        ("db2", "db1", port("postgres_port"), "open"),
        ("edge1", "app1", app_port, "open"),
        ("app2", "app1", app_port, "filtered"),
        ("db1", "app1", app_port, "filtered"),
        ("mon1", "db1", port("postgres_exporter_port"), "open"),
        ("mon1", "db1", port("redis_exporter_port"), "open"),
        ("mon1", "app1", port("node_exporter_port"), "open"),
        ("mon1", "app1", port("nginx_status_port"), "open"),
        ("edge1", "db1", port("node_exporter_port"), "filtered"),
        ("app1", "db2", port("postgres_exporter_port"), "filtered"),
    ]


def test_only_the_intended_peers_reach_each_service(fleet):
    wrong = []
    for src, dst, port, expected in _matrix(fleet):
        got = reach(fleet[src], fleet[dst].data["private_address"], port)
        if got != expected:
            wrong.append(f"{src} -> {dst}:{port}: {got}, expected {expected}")
    assert wrong == []


TARGETS = (
    "python3 -c 'import json, urllib.request\n"
    'url = "http://127.0.0.1:{port}/api/v1/targets?state=active"\n'
    'for t in json.load(urllib.request.urlopen(url))["data"]["activeTargets"]:\n'
    '    print(t["labels"]["job"], t["labels"]["instance"], t["health"])\''
)


def test_prometheus_scrapes_every_host_over_the_private_network(fleet):
    mon = fleet["mon1"]
    command = TARGETS.format(port=mon.data["monitoring_prometheus_port"])
    deadline = time.monotonic() + 40
    while True:
        out = mon.host.run(command)
        assert out.rc == 0, out.stderr
        rows = [r for r in out.stdout.splitlines() if r]
        down = [r for r in rows if not r.endswith(" up")]
        if not down or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {"postgres db2 up", "apps app1 up", "apps app2 up", "node edge1 up"} <= set(rows)
    assert down == []


def test_an_app_host_that_stops_costs_no_get_request(fleet):
    """Under load through the edge: app2 first stops taking new connections from the edge
    (packets dropped, as from a host that went away: nginx gives up after its connect
    timeout and tries app1), then its nginx stops (connections refused). Every GET is
    answered; app2 serves again afterwards."""
    app2, edge = fleet["app2"], fleet["edge1"]
    rule = f"INPUT -s {edge.data['private_address']} -p tcp -m conntrack --ctstate NEW -j DROP"
    with Load(edge.data["ssh_hostname"], "api.galion.app", path="/version", rate=50) as load:
        time.sleep(3)
        assert app2.host.run(f"sudo iptables -I {rule}").rc == 0
        try:
            time.sleep(8)
        finally:
            app2.host.run(f"sudo iptables -D {rule}")
        assert app2.host.run("sudo systemctl stop nginx").rc == 0
        try:
            time.sleep(8)
        finally:
            app2.host.run("sudo systemctl start nginx")
        time.sleep(3)
    assert len(load.samples) > 600
    assert load.failed() == [], load.failed()[:5]
    assert reach(edge, app2.data["private_address"], 8001) == "open"
