"""ops.canary: the table the restore drills and restores count rows in (the metrics job
writes a row every 5 minutes)."""

from pyinfra import host

from galion.facts.postgres import PostgresQuery
from galion.ops import postgres_sql


def canary_database(data) -> str:
    return data.get("backups_canary_database") or data.get("postgres_databases")[0]["name"]


def create():
    database = canary_database(host.data)
    rows = host.get_fact(
        PostgresQuery, database=database, sql="select to_regclass('ops.canary') is not null"
    )
    if rows == [["t"]]:
        host.noop("ops.canary exists")
        return
    postgres_sql(
        name=f"Canary table ops.canary in {database} (restore drills count its rows)",
        database=database,
        sql="CREATE SCHEMA IF NOT EXISTS ops AUTHORIZATION postgres;\n"
        "CREATE TABLE IF NOT EXISTS ops.canary (id bigserial PRIMARY KEY, "
        "written_at timestamptz NOT NULL DEFAULT now(), note text);\n",
    )
