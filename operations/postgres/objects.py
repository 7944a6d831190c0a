"""On the primary: the apps' login roles and databases, the monitoring and replication
roles, and pg_stat_statements. A replica gets them all with the WAL."""

from pyinfra import host
from pyinfra.operations import server

from galion.facts.postgres import PostgresDatabases, PostgresQuery, PostgresRoles
from galion.ops import postgres_sql
from galion.postgresql import login_role


def createdb_command(name: str, owner: str) -> str:
    return f"runuser -u postgres -- createdb -O {owner} {name}"


def roles_and_databases():
    roles = host.get_fact(PostgresRoles)
    databases = host.get_fact(PostgresDatabases)
    data = host.data
    for db in data.postgres_databases:
        login_role(
            db["owner"],
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION",
            db["password_secret"],
            roles,
        )
    monitor = data.postgres_monitoring_role
    in_pg_monitor = host.get_fact(
        PostgresQuery,
        sql=(
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.member "
            "join pg_roles g on g.oid = m.roleid where g.rolname = 'pg_monitor'"
        ),
    )
    login_role(
        monitor,
        "LOGIN NOSUPERUSER NOREPLICATION",
        "POSTGRES_MONITORING_PASSWORD",
        roles,
        extra_sql=f'GRANT pg_monitor TO "{monitor}";\n',
        extra_ok=[monitor] in in_pg_monitor,
    )
    login_role(
        data.postgres_replication_role,
        "LOGIN REPLICATION NOSUPERUSER",
        "POSTGRES_REPLICATION_PASSWORD",
        roles,
    )
    for db in data.postgres_databases:
        if databases.get(db["name"]) == db["owner"]:
            host.noop(f"database {db['name']} owned by {db['owner']}")
            continue
        if db["name"] in databases:
            postgres_sql(
                name=f"Database {db['name']} owned by {db['owner']}",
                sql=f'ALTER DATABASE "{db["name"]}" OWNER TO "{db["owner"]}";\n',
            )
        else:
            server.shell(
                name=f"Create database {db['name']} owned by {db['owner']}",
                commands=[createdb_command(db["name"], db["owner"])],
            )


def extensions():
    rows = host.get_fact(PostgresQuery, sql="select extname from pg_extension")
    if ["pg_stat_statements"] in rows:
        host.noop("pg_stat_statements is installed")
        return
    postgres_sql(
        name="pg_stat_statements view (for the exporter and slow-query reviews)",
        sql="CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n",
    )
