"""A restart an earlier run left pending: done now if the run may restart, else said."""

from pyinfra import host, logger
from pyinfra.operations import server

from galion import postgresql
from galion.facts.postgres import PostgresQuery


def pending_restart(major: int):
    """Settings an earlier run changed but that wait for a restart (it was not allowed)."""
    rows = host.get_fact(PostgresQuery, sql="select name from pg_settings where pending_restart")
    if not rows:
        host.noop("no setting waits for a restart")
        return
    names = ", ".join(row[0] for row in rows)
    if postgresql.restart_allowed(host.data):
        server.shell(
            name=f"Restart PostgreSQL for settings that wait for it ({names})",
            commands=[f"systemctl restart {postgresql.unit(major)}"],
        )
    else:
        host.log(
            f"PostgreSQL restart pending for {names}: converge with --data "
            "postgres_restart_allowed=true in a maintenance window",
            logger.warning,
        )
