"""The split fleet (python -m sandbox up --topology fleet): the same roles, converged on
an edge, two app hosts, a PostgreSQL primary and its streaming replica and a monitoring
host. After `python -m sandbox.converge bootstrap` on that topology:

    pytest tests/fleet
"""

import json
import re
import shlex
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


def await_answer(read, want, seconds: float, why: str) -> None:
    """Ask `read()` again until it answers `want`, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while (got := read()) != want:
        assert time.monotonic() < deadline, f"{why} (last answer: {got!r})"
        time.sleep(0.5)


def logs_in(node) -> bool:
    try:
        return node.host.run("true").rc == 0
    except RuntimeError:  # testinfra's answer to an ssh that cannot connect
        return False


def await_streaming(primary, replica: str) -> None:
    await_answer(
        lambda: sql(primary, "select application_name, state from pg_stat_replication"),
        f"galion_{replica}|streaming",
        30,
        f"{replica} does not stream from {primary.name}",
    )


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


# Only the intended peers reach each service: from, to, the port's knob (on db1; `app`
# is app1's galion_api upstream port), what the probe must find.
MATRIX = """
edge1  db1   postgres_port           filtered
edge1  db1   pgbouncer_port          filtered
edge1  db1   redis_port              filtered
app1   db1   pgbouncer_port          open
app1   db1   redis_port              open
app1   db1   postgres_port           filtered
app1   db2   pgbouncer_port          open
app1   db2   postgres_port           filtered
db2    db1   postgres_port           open
edge1  app1  app                     open
app2   app1  app                     filtered
db1    app1  app                     filtered
mon1   db1   postgres_exporter_port  open
mon1   db1   redis_exporter_port     open
mon1   app1  node_exporter_port      open
mon1   app1  nginx_tls_status_port   open
edge1  db1   node_exporter_port      filtered
app1   db2   postgres_exporter_port  filtered
"""


def _matrix(fleet):
    """MATRIX's rows as (from, to, port, expected)."""
    app_port = fleet["app1"].data["nginx_tls_upstream_ports"]["galion_api"]
    rows = [line.split() for line in MATRIX.strip().splitlines()]
    return [
        (src, dst, app_port if key == "app" else fleet["db1"].data[key], expected)
        for src, dst, key, expected in rows
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


# --- Failover (actions/failover.py). These run last: they make db2 the primary and db1 its
# replica (the sandbox's groups are edited as an operator edits the inventory), so the
# tests above do not hold on this sandbox afterwards.


def failover(*extra: str) -> converge.Result:
    return converge.converge(*extra, deploy="actions/failover.py")


def app_database_url(fleet, key: str = "DATABASE_URL") -> str:
    app1 = fleet["app1"]
    env = app1.host.run(f"sudo cat {app1.data['app_env_dir']}/galion.env").stdout
    return dict(line.split("=", 1) for line in env.splitlines() if "=" in line)[key]


def reads_from(fleet) -> str:
    """The host whose PgBouncer the apps' DATABASE_READ_URL names."""
    url = app_database_url(fleet, "DATABASE_READ_URL")
    return next(n for n, h in fleet.items() if f"@{h.data.get('private_address')}:" in url)


def app_sql(node, url: str, query: str):
    """A query as the apps run it: their role, through PgBouncer, from their env file."""
    return node.host.run(f"psql -X -At {shlex.quote(url)} -c {shlex.quote(query)}")


def test_failover_refuses_a_replica_behind_or_a_primary_out_of_reach(fleet):
    """Nothing changes when the promotion would lose more WAL than the knob allows, or
    when the loss cannot be measured (the primary out of reach); each says why."""
    from sandbox import state

    db1, db2 = fleet["db1"], fleet["db2"]
    state.regroup({"db2": ["db", "backups"], "db1": ["db_replica"]})
    db1_address, port = db1.data["private_address"], db1.data["postgres_port"]

    # 1. Behind: the WAL the primary sends on the replica's stream is dropped on the
    # replica (its own new connections still get through, so the lag is measured).
    stream = db2.host.run(
        f"ss -Htn state established dst {db1_address}:{port} | awk '{{print $3}}'"
    ).stdout.split()
    assert len(stream) == 1, stream
    local_port = stream[0].rsplit(":", 1)[1]
    rule = f"INPUT -p tcp -s {db1_address} --sport {port} --dport {local_port} -j DROP"
    assert db2.host.run(f"sudo iptables -I {rule}").rc == 0
    try:
        sql(
            db1,
            "create table galion_failover_lag as "
            "select g, repeat('x', 500) as pad from generate_series(1, 8000) g",
            "galion",
        )
        behind = failover()
    finally:
        db2.host.run(f"sudo iptables -D {rule}")
        sql(db1, "drop table if exists galion_failover_lag", "galion")
    assert behind.returncode != 0 and behind.changed == []
    assert "bytes of WAL behind" in behind.stderr, behind.stderr[-2000:]
    assert "postgres_failover_max_lag_bytes" in behind.stderr

    # 2. Out of reach: nothing can be measured, so nothing is promoted without the word.
    rule = f"OUTPUT -d {db1_address} -p tcp --dport {port} -j REJECT"
    assert db2.host.run(f"sudo iptables -I {rule}").rc == 0
    try:
        unreachable = failover()
    finally:
        db2.host.run(f"sudo iptables -D {rule}")
    assert unreachable.returncode != 0 and unreachable.changed == []
    assert "out of reach" in unreachable.stderr and "postgres_failover_force" in unreachable.stderr

    assert sql(db1, "select pg_is_in_recovery()") == "f"
    assert sql(db2, "select pg_is_in_recovery()") == "t"
    # As found: the replica streams again and has replayed everything (the stream's TCP
    # connection comes back on its own retransmission schedule after the DROP).
    caught_up = (
        "select count(*) from pg_stat_replication where application_name = 'galion_db2' "
        "and state = 'streaming' and pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) < 65536"
    )
    deadline = time.monotonic() + 120
    while sql(db1, caught_up) != "1":
        assert time.monotonic() < deadline, sql(db1, "select * from pg_stat_replication")
        time.sleep(1)


def test_failover_fences_the_primary_promotes_the_replica_and_repoints_the_apps(fleet):
    db1, db2, app1, edge = fleet["db1"], fleet["db2"], fleet["app1"], fleet["edge1"]
    url = app_database_url(fleet)
    assert f"@{db1.data['private_address']}:" in url
    created = app_sql(
        db1,
        url,
        "create table if not exists galion_failover_rows (n int); "
        "insert into galion_failover_rows select generate_series(1, 5000)",
    )
    assert created.rc == 0, created.stderr
    # Committed on the primary a moment before the failover: all of it must be there.
    with Load(edge.data["ssh_hostname"], "api.galion.app", path="/version", rate=20) as load:
        result = failover().check()
    assert any("Promote db2" in c for c in result.changed), result.changed
    assert any("Fence the former primary" in c for c in result.changed)
    assert load.failed() == [], load.failed()[:5]

    assert sql(db2, "select pg_is_in_recovery()") == "f"
    assert sql(db2, "select count(*) from galion_failover_rows", "galion") == "5000"
    # The apps' env names the new primary, and their role writes there through PgBouncer.
    url = app_database_url(fleet)
    assert f"@{db2.data['private_address']}:" in url
    wrote = app_sql(db2, url, "insert into galion_failover_rows values (-1)")
    assert wrote.rc == 0, wrote.stderr
    # Their reads too, until a converge rejoins the fenced db1 (it was their replica).
    assert reads_from(fleet) == "db2"

    # The old primary is fenced: stopped, masked, marked, PgBouncer gone with it.
    major = sql(db2, "show server_version_num")[:2]
    for unit in (f"postgresql@{major}-main", "pgbouncer"):
        assert db1.host.run(f"systemctl is-enabled {unit}").stdout.strip() == "masked", unit
        assert db1.host.run(f"systemctl is-active {unit}").stdout.strip() != "active", unit
    assert db1.host.file("/var/lib/postgresql/galion-fenced").exists
    assert reach(app1, db1.data["private_address"], db1.data["pgbouncer_port"]) != "open"


def test_the_next_converge_rejoins_the_former_primary_as_a_replica(fleet):
    db1, db2 = fleet["db1"], fleet["db2"]
    result = converge.converge().check()
    assert any("Rejoin the former primary" in c for c in result.changed), result.changed
    await_streaming(db2, "db1")
    assert sql(db1, "select pg_is_in_recovery()") == "t"
    assert not db1.host.file("/var/lib/postgresql/galion-fenced").exists
    # Every row: those from before the failover and the one written after it.
    await_answer(
        lambda: sql(db1, "select count(*) from galion_failover_rows", "galion"),
        "5001",
        10,
        "db1 lacks rows of the new primary",
    )
    assert reads_from(fleet) == "db1"  # the replica again
    assert converge.converge().check().changed == []


# --- After the failover and the rejoin: the app hosts only.


def _images(node) -> set[str]:
    return set(node.host.check_output("docker ps --format '{{.Names}} {{.Image}}'").splitlines())


def test_a_rollout_that_fails_on_one_app_host_is_not_tried_on_the_next(fleet):
    """An API image that never turns healthy: the first app host's rollout fails (its old
    container serves on), and the next app host is not touched at all."""
    apps = [fleet["app1"], fleet["app2"]]
    services = [
        {**s, "image": "galion-test-app:broken"} if s["name"] == "galion-api" else s
        for s in apps[0].data["apps_services"]
    ]
    before = {n.name: _images(n) for n in apps}
    result = converge.converge("--data", "apps_services=" + json.dumps(services))
    assert result.returncode != 0
    assert sorted(result.failed_hosts) == ["app1", "app2"], result.stderr[-3000:]
    assert "never turned healthy" in result.stderr
    assert re.search(r"not started here: it failed on app[12] first", result.stderr)
    assert {n.name: _images(n) for n in apps} == before
    converge.converge().check()  # the data's images again (their settings files)


# --- Last: the primary cut off the network (it keeps running), a forced failover.


def test_a_primary_cut_off_is_failed_over_by_force_and_rejoins_once_fenced(fleet):
    """The bad day: the primary's network dies while its PostgreSQL runs on. The failover
    takes the operator's word (the loss cannot be measured) and the apps write and read on
    the promoted replica. Back on the network, the old primary is a primary of its own,
    never fenced: the converge refuses it (the rest converges, the apps do not read from
    it), actions/failover.py fences it, the next converge rejoins it."""
    from sandbox import network, state

    db1, db2 = fleet["db1"], fleet["db2"]
    assert sql(db2, "select pg_is_in_recovery()") == "f"  # since the failover above
    url = app_database_url(fleet)
    assert app_sql(db2, url, "insert into galion_failover_rows values (-2)").rc == 0
    await_answer(
        lambda: sql(db1, "select count(*) from galion_failover_rows where n = -2", "galion"),
        "1",
        10,
        "db1 does not replay db2's rows",
    )
    state.regroup({"db1": ["db", "backups"], "db2": ["db_replica"]})
    network.set_link(db2.data["private_address"], up=False)
    try:
        unforced = failover()
        assert unforced.returncode != 0 and unforced.changed == []
        assert "out of reach" in unforced.stderr and "postgres_failover_force" in unforced.stderr
        forced = failover("--data", "postgres_failover_force=true")
        assert any("Promote db1" in c for c in forced.changed), forced.stderr[-3000:]
        assert "db2 is out of reach and NOT fenced" in forced.stderr
        assert sql(db1, "select pg_is_in_recovery()") == "f"
        url = app_database_url(fleet)
        assert f"@{db1.data['private_address']}:" in url
        assert reads_from(fleet) == "db1"
        assert app_sql(db1, url, "insert into galion_failover_rows values (-3)").rc == 0
    finally:
        network.set_link(db2.data["private_address"], up=True)

    # Back: still a primary (never fenced), holding nothing of what db1 took since.
    await_answer(lambda: logs_in(db2), True, 30, "db2 does not answer again")
    assert sql(db2, "select pg_is_in_recovery()") == "f"
    refused = converge.converge()
    assert refused.failed_hosts == ["db2"], refused.stderr[-3000:]
    assert "run failover.py again to fence it" in refused.stderr
    assert reads_from(fleet) == "db1"  # not from a primary of its own

    fenced = failover().check()
    assert any("Fence the former primary" in c for c in fenced.changed), fenced.changed
    assert not any("Promote" in c for c in fenced.changed)
    rejoined = converge.converge().check()
    assert any("Rejoin the former primary" in c for c in rejoined.changed), rejoined.changed
    await_streaming(db1, "db2")
    await_answer(
        lambda: sql(db2, "select count(*) from galion_failover_rows where n = -3", "galion"),
        "1",
        10,
        "db2 lacks what db1 took after the failover",
    )
    assert reads_from(fleet) == "db2"
    assert converge.converge().check().changed == []
