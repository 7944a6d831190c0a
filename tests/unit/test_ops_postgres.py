"""galion.ops.postgres: the commands that run SQL from a private file, no host."""

import pytest

from galion.ops import postgres
from tests.unit.op_commands import raw

SECRET_SQL = "alter role app password 'SCRAM-SHA-256$4096:abc';"


def test_sql_file_path_is_named_by_database_and_statements():
    assert postgres.sql_file_path(SECRET_SQL, "app") == "/var/lib/galion/sql/9b9c9bdeae11397d.sql"
    assert (
        postgres.sql_file_path("select 1;", "my db") == "/var/lib/galion/sql/bc1b1c90963443f9.sql"
    )


@pytest.mark.parametrize(
    "database, path, expected",
    [
        (
            "app",
            "/var/lib/galion/sql/9b9c9bdeae11397d.sql",
            "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            "-d app -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; r=$?; "
            "rm -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; exit $r'",
        ),
        (
            "my db",
            "/var/lib/galion/sql/bc1b1c90963443f9.sql",
            "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            "-d '\"'\"'my db'\"'\"' -f /var/lib/galion/sql/bc1b1c90963443f9.sql; r=$?; "
            "rm -f /var/lib/galion/sql/bc1b1c90963443f9.sql; exit $r'",
        ),
    ],
    ids=["plain", "quotes_the_database"],
)
def test_run_sql_file_command(database, path, expected):
    assert postgres.run_sql_file_command(database, path).get_raw_value() == expected


def test_postgres_sql_commands_through_sudo():
    commands = postgres.postgres_sql_commands(SECRET_SQL, "app", "deploy")
    assert raw(commands) == [
        "install -d -m 0700 -o postgres -g postgres /var/lib/galion/sql",
        "install -d -m 0700 -o deploy /var/tmp/galion-upload-deploy",
        (
            "install -m 0600 -o postgres -g postgres /dev/null "
            "/var/lib/galion/sql/9b9c9bdeae11397d.sql"
        ),
        (
            "upload",
            "/var/lib/galion/sql/9b9c9bdeae11397d.sql",
            "/var/tmp/galion-upload-deploy/21d15bf4783a8c5e",
            SECRET_SQL,
        ),
        (
            "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            "-d app -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; r=$?; "
            "rm -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; exit $r'"
        ),
    ]
    for command in commands:
        assert "SCRAM" not in str(command)


def test_postgres_sql_commands_without_sudo():
    assert raw(postgres.postgres_sql_commands("select 1;", "postgres"))[:3] == [
        "install -d -m 0700 -o postgres -g postgres /var/lib/galion/sql",
        (
            "install -m 0600 -o postgres -g postgres /dev/null "
            "/var/lib/galion/sql/3b35f2d1c772c225.sql"
        ),
        ("upload", "/var/lib/galion/sql/3b35f2d1c772c225.sql", None, "select 1;"),
    ]


def test_postgres_sql_is_declared_non_idempotent():
    # pyinfra's @operation sets is_idempotent on the function; functools.wraps copies it.
    assert postgres.postgres_sql.is_idempotent is False
    assert postgres.postgres_sql._inner.is_idempotent is False
    assert "always a change" in " ".join(postgres.postgres_sql.__doc__.split())
