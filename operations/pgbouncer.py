"""PgBouncer in front of PostgreSQL on every database host: transaction pooling, client
passwords looked up in PostgreSQL (auth_query), and its pools as metrics."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from galion import exporters, postgresql, secrets, topology
from galion.facts.files import ConfigSettings, parse_settings
from galion.facts.postgres import PostgresQuery, PostgresRoles
from galion.ops import config_file, postgres_sql, render, restarts_after_crash
from galion.paths import role_files
from galion.role import Knob, Role
from galion.validators import int_between

FILES = role_files("pgbouncer")

KNOBS = {
    "pgbouncer_max_client_conn": Knob(
        1000, "Client connections PgBouncer accepts in all.", check=int_between(10, 100000)
    ),
    "pgbouncer_default_pool_size": Knob(
        25,
        "Server connections per database and user (transaction pooling).",
        check=int_between(1, 1000),
    ),
    "pgbouncer_reserve_pool_size": Knob(
        5, "Extra server connections a busy pool may borrow for a moment."
    ),
    "pgbouncer_auth_user": Knob(
        "pgbouncer_auth", "Role PgBouncer logs in as to look up client passwords (auth_query)."
    ),
    "pgbouncer_stats_user": Knob(
        "pgbouncer_stats",
        "Role the exporter reads SHOW STATS with (PgBouncer admin console, stats only).",
    ),
}

ROLE = Role(
    # Beside PostgreSQL, on the primary and on each replica (read-only queries there).
    groups=("db",),
    fleet_groups=("db_replica",),
    # The app hosts it listens for (on the private address when they are other hosts).
    peer_groups=("app",),
    order=25,
    knob_prefixes=("pgbouncer_",),
    required_secrets=lambda data: ["PGBOUNCER_AUTH_PASSWORD", "PGBOUNCER_STATS_PASSWORD"],
)


@deploy("PgBouncer")
def pgbouncer():
    major = postgresql.version(host.data, host.get_fact(OsRelease))
    if postgresql.refusal(inventory, host, major):
        host.noop("PgBouncer is left as it is: the postgres role refused this host")
        return
    if not topology.is_replica(inventory, host):
        # Before PgBouncer looks passwords up with them; a replica gets both with the WAL.
        _auth_role()
        _auth_function()
    _config()
    _metrics()


def _auth_role():
    postgresql.login_role(
        host.data.pgbouncer_auth_user,
        "LOGIN NOSUPERUSER NOREPLICATION",
        "PGBOUNCER_AUTH_PASSWORD",
        host.get_fact(PostgresRoles),
    )


AUTH_FUNCTION = """\
CREATE SCHEMA IF NOT EXISTS pgbouncer AUTHORIZATION postgres;
CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE(usename name, passwd text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    -- PgBouncer looks client passwords up here; superusers never log in through it.
    SELECT usename, passwd FROM pg_catalog.pg_shadow
    WHERE usename = p_usename AND NOT usesuper
$$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbouncer TO "{auth_user}";
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO "{auth_user}";
"""


def _auth_function():
    """The SECURITY DEFINER lookup PgBouncer's auth_query calls, in every app database."""
    auth_user = host.data.pgbouncer_auth_user
    for db in host.data.postgres_databases:
        rows = host.get_fact(
            PostgresQuery,
            database=db["name"],
            sql=(
                "select p.prosecdef, has_function_privilege('"
                + auth_user
                + "', p.oid, 'execute'), "
                "has_function_privilege('public', p.oid, 'execute') "
                "from pg_proc p join pg_namespace n "
                "on n.oid = p.pronamespace where n.nspname = 'pgbouncer' and p.proname = 'get_auth'"
            ),
        )
        if rows == [["t", "t", "f"]]:
            host.noop(f"pgbouncer.get_auth in {db['name']} is in place")
            continue
        postgres_sql(
            name=f"pgbouncer.get_auth() in {db['name']} (SECURITY DEFINER)",
            database=db["name"],
            sql=AUTH_FUNCTION.format(auth_user=auth_user),
        )


# PgBouncer reads its file limit from the unit: a new limit needs a restart.
PGBOUNCER_RESTART_NOW = "systemctl restart pgbouncer"
PGBOUNCER_RESTART = ["systemctl daemon-reload", PGBOUNCER_RESTART_NOW]
# Every other change reloads.
PGBOUNCER_RELOAD = "systemctl reload-or-restart pgbouncer"
PGBOUNCER_INI = "/etc/pgbouncer/pgbouncer.ini"
# PgBouncer ignores these on reload: a change to them needs a restart.
PGBOUNCER_RESTART_SETTINGS = ("listen_addr", "listen_port")


def pgbouncer_needs_restart(current: dict, content: str) -> bool:
    """Whether the wanted pgbouncer.ini changes a setting PgBouncer reads only at start."""
    wanted = parse_settings(content.splitlines(), PGBOUNCER_RESTART_SETTINGS)
    have = {k: v for k, v in current.items() if k in PGBOUNCER_RESTART_SETTINGS}
    return bool(have) and have != wanted


def _config():
    data = host.data
    content = render(
        "pgbouncer/etc/pgbouncer/pgbouncer.ini.j2",
        databases=data.postgres_databases,
        postgres_port=data.postgres_port,
        listen=["127.0.0.1"] + postgresql.data_tier_binds(inventory, host),
        port=data.pgbouncer_port,
        max_client_conn=data.pgbouncer_max_client_conn,
        default_pool_size=data.pgbouncer_default_pool_size,
        reserve_pool_size=data.pgbouncer_reserve_pool_size,
        auth_user=data.pgbouncer_auth_user,
        stats_user=data.pgbouncer_stats_user,
    )
    restart = pgbouncer_needs_restart(
        host.get_fact(ConfigSettings, path=PGBOUNCER_INI, keys=PGBOUNCER_RESTART_SETTINGS), content
    )
    ini = config_file(
        name="PgBouncer: transaction pooling, scram through auth_query",
        dest=PGBOUNCER_INI,
        user="postgres",
        group="postgres",
        mode="640",
        content=content,
    )
    userlist = config_file(
        name="PgBouncer auth file (secret)",
        dest="/etc/pgbouncer/userlist.txt",
        user="postgres",
        group="postgres",
        mode="600",
        secret=True,
        content=render(
            "pgbouncer/etc/pgbouncer/userlist.txt.j2",
            users=[
                (data.pgbouncer_auth_user, secrets.get("PGBOUNCER_AUTH_PASSWORD")),
                (data.pgbouncer_stats_user, secrets.get("PGBOUNCER_STATS_PASSWORD")),
            ],
        ),
    )
    limits = config_file(
        name="PgBouncer may hold max_client_conn sockets",
        dest="/etc/systemd/system/pgbouncer.service.d/galion-limits.conf",
        content=render(
            "pgbouncer/etc/systemd/pgbouncer-limits.conf.j2",
            nofile=int(data.pgbouncer_max_client_conn) * 2 + 1024,
        ),
    )
    server.shell(
        name="Restart PgBouncer for its new file limit",
        commands=PGBOUNCER_RESTART,
        _if=limits.did_change,
    )
    server.shell(
        name=(
            "Restart PgBouncer: its listen address or port changed"
            if restart
            else "Reload PgBouncer if its config changed"
        ),
        commands=[PGBOUNCER_RESTART_NOW if restart else PGBOUNCER_RELOAD],
        _if=any_changed(ini, userlist),
    )
    restarts_after_crash("PgBouncer", "pgbouncer.service")
    systemd.service(
        name="PgBouncer enabled and running", service="pgbouncer", running=True, enabled=True
    )


def _metrics():
    """PgBouncer's pools (clients active and waiting, servers, longest wait) as textfile
    metrics, from `SHOW POOLS` as the stats user every 15 s. Not Debian's exporter:
    Debian 12's crashes on its own PgBouncer 1.18 (it asks for the renamed
    total_requests), and Debian 13's is another program with other metric names."""
    data = host.data
    config_file(
        name="PgBouncer metrics: the stats user's password (secret)",
        dest="/etc/galion/pgbouncer-metrics.env",
        mode="600",
        secret=True,
        content="# Managed by galion-infra (operations/postgres.py).\n"
        f"PGPASSWORD={secrets.get('PGBOUNCER_STATS_PASSWORD')}\n",
    )
    exporters.textfile_collector(
        "galion-pgbouncer-metrics",
        FILES,
        service=render(
            "pgbouncer/etc/systemd/system/galion-pgbouncer-metrics.service.j2",
            textfile_dir=exporters.TEXTFILE_DIR,
            port=data.pgbouncer_port,
            stats_user=data.pgbouncer_stats_user,
        ),
    )
