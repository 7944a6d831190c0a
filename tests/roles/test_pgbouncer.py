"""PgBouncer on db hosts, checked live (operations/pgbouncer.py)."""

import re

import pytest

from tests.inventory import private_or_loopback
from tests.roles.data_tier import (
    app_env_shell,
    assert_wrong_or_no_password_is_refused,
    listening_addresses,
    major,
)

GROUP = "db"


def test_listens_on_loopback_and_also_on_the_app_containers_bridge(node):
    addresses = listening_addresses(node, node.data["pgbouncer_port"])
    wanted = {"127.0.0.1", "[::1]", private_or_loopback(node)}
    if "app" in node.groups:
        gateway = node.data["docker_bridge_address"].split("/")[0]
        assert gateway in addresses
        wanted.add(gateway)
    assert addresses and addresses <= wanted, addresses


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


def test_wrong_or_no_password_is_refused(node):
    assert_wrong_or_no_password_is_refused(node, node.data["pgbouncer_port"])


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
