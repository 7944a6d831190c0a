"""PostgreSQL: SQL run as the postgres superuser from a private uploaded file, never from
a command line."""

import hashlib
import shlex

from pyinfra import host, logger, state
from pyinfra.api import StringCommand, operation

from .uploads import private_upload_commands, sudo_upload_user


@operation(is_idempotent=False)
def postgres_sql(sql: str, database: str = "postgres", secret: bool = False):
    """
    Run SQL as the postgres superuser from an uploaded file, never from a command line.

    Command lines end up in `ps`, in sudo's journal entries and in pyinfra's output; the
    file is private (0600, postgres) and removed afterwards. Not idempotent: running it is
    always a change, so callers decide from facts whether the SQL is needed at all.

    + sql: the statements (run with ON_ERROR_STOP, in one transaction)
    + database: database to connect to
    + secret: the SQL holds a secret (a password verifier): never print it

    **Example:**

    .. code:: python

        postgres_sql(name="Create role app", sql="create role app login;")
    """
    if not secret and state.config.DIFF:
        host.log(f"Will run on {database}:", logger.info)
        for line in sql.strip().splitlines():
            logger.info("  %s", line)
    yield from postgres_sql_commands(sql, database, sudo_upload_user())


SQL_DIR = "/var/lib/galion/sql"


def sql_file_path(sql: str, database: str) -> str:
    """Where `postgres_sql` uploads these statements (named by their hash)."""
    name = hashlib.sha256(f"{database}\0{sql}".encode()).hexdigest()[:16]
    return f"{SQL_DIR}/{name}.sql"


def run_sql_file_command(database: str, path: str) -> StringCommand:
    """Run the SQL file at `path` as postgres in one transaction, then remove it either way."""
    return StringCommand(
        "sh",
        "-c",
        shlex.quote(
            f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            f"-d {shlex.quote(database)} -f {path}; r=$?; rm -f {path}; exit $r"
        ),
    )


def postgres_sql_commands(sql: str, database: str, sudo_user: str | None = None) -> list:
    """Create the private SQL directory, upload the statements into it, run and remove them."""
    path = sql_file_path(sql, database)
    return [
        StringCommand("install", "-d", "-m", "0700", "-o", "postgres", "-g", "postgres", SQL_DIR),
        *private_upload_commands(sql, path, "postgres", "postgres", sudo_user),
        run_sql_file_command(database, path),
    ]
