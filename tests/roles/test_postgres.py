"""PostgreSQL and PgBouncer on db hosts, checked live (operations/postgres.py)."""

import re

import pytest

from operations import postgres
from tests.inventory import private_or_loopback, skip_unless_also_app

GROUP = "db"
SIZE = {"kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}


def psql(node, sql: str, database: str = "postgres") -> str:
    return node.host.check_output(
        f"runuser -u postgres -- psql -X -AtF '|' -d {database} -c \"{sql}\""
    )


def app_env_shell(node, app: str, script: str):
    """Run bash with the app's environment file loaded: no secret on a command line."""
    skip_unless_also_app(node)
    env = f"{node.data['app_env_dir']}/{app}.env"
    return node.host.run(f"bash -c 'set -a; . {env}; set +a; {script}'")


def _in_base_units(value: str, unit: str | None) -> float:
    m = re.fullmatch(r"(-?[\d.]+)\s*([a-zA-Z]*)", value)
    number, suffix = float(m.group(1)), m.group(2)
    if suffix in SIZE:
        return number * SIZE[suffix]
    if suffix in TIME:
        return number * TIME[suffix]
    # A bare number is in the setting's own unit.
    if unit in SIZE or unit == "8kB":
        return number * (8192 if unit == "8kB" else SIZE[unit])
    if unit in TIME:
        return number * TIME[unit]
    return number


def major(node) -> int:
    return int(psql(node, "show server_version_num")) // 10000


def listen_addresses(node) -> list[str]:
    """Loopback, and in a fleet the private address (replication, PgBouncer's peers)."""
    private = node.data.get("private_address")
    return ["localhost"] + ([private] if private else [])


def expected_settings(node) -> dict[str, str]:
    ram = int(node.host.check_output("awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"))
    budget = postgres.memory_budget_mb(node.data, postgres.stable_ram_mb(ram), node.groups)
    return {
        name: value.strip("'")
        for name, value, _ in postgres.tuning(
            node.data, budget, listen_addresses(node), major(node)
        )
    }


def test_major_version_comes_from_the_distro(node):
    release = dict(
        line.split("=", 1)
        for line in node.host.file("/etc/os-release").content_string.splitlines()
        if "=" in line
    )
    key = (release["ID"].strip('"'), release["VERSION_ID"].strip('"'))
    # Written here, not read from the code: what each distro ships.
    distro_major = {("debian", "12"): 15, ("debian", "13"): 17, ("ubuntu", "24.04"): 16}
    wanted = node.data.get("postgres_version") or distro_major[key]
    assert int(psql(node, "show server_version_num")) // 10000 == wanted


def test_live_settings_match_the_data(node):
    wanted = expected_settings(node)
    rows = psql(node, "select name, setting, coalesce(unit, '') from pg_settings")
    live = {n: (s, u or None) for n, s, u in (r.split("|") for r in rows.splitlines())}
    for name, value in wanted.items():
        setting, unit = live[name]
        if re.fullmatch(r"-?[\d.]+\s*[a-zA-Z]*", value) and (unit or re.search(r"[a-z]$", value)):
            assert _in_base_units(value, unit) == _in_base_units(setting, unit), name
        else:
            assert setting.lower() == value.lower(), name
    assert psql(node, "select count(*) from pg_settings where pending_restart") == "0"


def test_pg_stat_statements_collects(node):
    assert int(psql(node, "select count(*) from pg_stat_statements")) >= 0


def test_databases_owned_by_their_login_roles(node):
    owners = dict(
        r.split("|")
        for r in psql(node, "select datname, pg_get_userbyid(datdba) from pg_database").splitlines()
    )
    for db in node.data["postgres_databases"]:
        assert owners.get(db["name"]) == db["owner"]
    roles = {
        r.split("|")[0]: r.split("|")[1:]
        for r in psql(
            node,
            "select rolname, rolcanlogin, rolsuper, rolreplication, "
            "left(rolpassword, 14) from pg_authid",
        ).splitlines()
    }
    for db in node.data["postgres_databases"]:
        assert roles[db["owner"]] == ["t", "f", "f", "SCRAM-SHA-256$"]
    assert roles[node.data["postgres_replication_role"]][:3] == ["t", "f", "t"]
    monitor = node.data["postgres_monitoring_role"]
    assert roles[monitor][:3] == ["t", "f", "f"]
    assert psql(node, f"select pg_has_role('{monitor}', 'pg_monitor', 'member')") == "t"


def test_hba_has_no_trust_and_no_md5(node):
    methods = set(psql(node, "select auth_method from pg_hba_file_rules").split())
    assert methods <= {"peer", "scram-sha-256"}, methods
    assert psql(node, "select count(*) from pg_hba_file_rules where error is not null") == "0"


def test_listens_on_loopback_and_pgbouncer_also_on_the_app_containers_bridge(node):
    gateway = node.data["docker_bridge_address"].split("/")[0]
    for port in (node.data["postgres_port"], node.data["pgbouncer_port"]):
        listeners = node.host.check_output(f"ss -Htln 'sport = :{port}'")
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in listeners.splitlines()}
        wanted = {"127.0.0.1", "[::1]", private_or_loopback(node)}
        if port == node.data["pgbouncer_port"] and "app" in node.groups:
            assert gateway in addresses
            wanted.add(gateway)
        assert addresses and addresses <= wanted, (port, addresses)


@pytest.mark.parametrize("app", ["galion", "galion_studio"])
def test_app_logs_in_through_pgbouncer_with_its_password(node, app):
    result = app_env_shell(
        node, app, 'psql -X -Atc "select current_user, current_database()" "$DATABASE_URL"'
    )
    assert result.rc == 0, result.stderr
    stack = next(s for s in node.data["app_env_stacks"] if s["name"] == app)
    db = next(d for d in node.data["postgres_databases"] if d["name"] == stack["database"])
    assert result.stdout.strip() == f"{db['owner']}|{db['name']}"
    assert (
        f":{node.data['pgbouncer_port']}/"
        in app_env_shell(node, app, 'echo "$DATABASE_URL"').stdout
    )


@pytest.mark.parametrize("port_key", ["pgbouncer_port", "postgres_port"])
def test_wrong_or_no_password_is_refused(node, port_key):
    port = node.data[port_key]
    wrong = node.host.run(
        f"psql -X -w 'postgresql://galion:not-the-password@127.0.0.1:{port}/galion' -c 'select 1'"
    )
    assert wrong.rc != 0 and "authentication failed" in wrong.stderr
    none = node.host.run(f"psql -X -w -h 127.0.0.1 -p {port} -U galion galion -c 'select 1'")
    assert none.rc != 0
    assert "no password supplied" in none.stderr or "authentication failed" in none.stderr


def test_superuser_cannot_come_through_pgbouncer(node):
    result = node.host.run(
        f"psql -X -w -h 127.0.0.1 -p {node.data['pgbouncer_port']} -U postgres galion -c 'select 1'"
    )
    assert result.rc != 0


def pgbouncer_admin(node, command: str) -> list[str]:
    """Rows of a PgBouncer console command (SHOW ...), run as the stats user."""
    stats = node.data["pgbouncer_stats_user"]
    output = node.host.check_output(
        'runuser -u postgres -- bash -c \'export PGPASSWORD=$(awk -v u="\\"' + stats + '\\"" '
        '"\\$1 == u {gsub(/\\"/, \\"\\", \\$2); print \\$2}" /etc/pgbouncer/userlist.txt); '
        f"psql -X -At -h 127.0.0.1 -p {node.data['pgbouncer_port']} -U {stats} pgbouncer "
        f'-c "{command}"\''
    )
    return [row for row in output.splitlines() if row]


def test_pgbouncer_pools_by_transaction(node):
    config = pgbouncer_admin(node, "show config")
    values = {row.split("|")[0]: row.split("|")[1] for row in config if "|" in row}
    assert values["pool_mode"] == "transaction"
    assert values["max_client_conn"] == str(node.data["pgbouncer_max_client_conn"])
    assert values["default_pool_size"] == str(node.data["pgbouncer_default_pool_size"])
    assert values["auth_type"] == "scram-sha-256"


# Clients that may connect while the load runs (an app reconnecting, a scrape); the load
# leaves them room, or PgBouncer rightly refuses one of them or of the load.
CLIENTS_ARRIVING_DURING_LOAD = 20


def test_pgbouncer_serves_its_whole_client_capacity_without_failures(node):
    """max_client_conn (1000, the plan's "1000 clients -> 100 DB connections") minus the
    clients already connected (apps, exporters) all get served by few server connections."""
    connected = len(pgbouncer_admin(node, "show clients"))
    clients = node.data["pgbouncer_max_client_conn"] - connected - CLIENTS_ARRIVING_DURING_LOAD
    assert clients >= 0.9 * node.data["pgbouncer_max_client_conn"], (connected, clients)
    pgbench = f"/usr/lib/postgresql/{major(node)}/bin/pgbench"
    init = app_env_shell(
        node, "galion", f'{pgbench} -q -i -s 10 "${{DATABASE_URL/@*:6432/@127.0.0.1:5432}}"'
    )
    assert init.rc == 0, init.stderr
    sampler = (
        "runuser -u postgres -- bash -c 'echo $$ > /tmp/pg-sampler.pid; m=0; "
        "for i in $(seq 1 1200); do "
        'n=$(psql -X -Atc "select count(*) from pg_stat_activity where backend_type = '
        '\\$\\$client backend\\$\\$"); [ "$n" -gt "$m" ] && m=$n; echo $m > /tmp/pg-max-conns; '
        "sleep 0.1; done' >/dev/null 2>&1 &"
    )
    node.host.run(sampler)
    try:
        run = app_env_shell(
            node,
            "galion",
            f'ulimit -n 8192; {pgbench} -n -M simple -c {clients} -j 8 -t 3 "$DATABASE_URL"',
        )
    finally:
        node.host.run("kill $(cat /tmp/pg-sampler.pid) || true")
    assert run.rc == 0, run.stdout[-2000:] + run.stderr[-2000:]
    processed = re.search(r"number of transactions actually processed: (\d+)/(\d+)", run.stdout)
    assert processed and processed.group(1) == processed.group(2) == str(clients * 3), run.stdout
    failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
    assert failed is None or failed.group(1) == "0", run.stdout
    peak = int(node.host.file("/tmp/pg-max-conns").content_string.strip())
    assert 0 < peak < node.data["postgres_max_connections"], peak
