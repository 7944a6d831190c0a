"""galion.facts.postgres: clusters, roles, databases, queries.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

from galion.facts import postgres
from tests.unit.fact_coverage import covers

# pg_lsclusters --no-header: a primary, a standby and a stopped cluster (one line each).
PG_LSCLUSTERS = """\
15  main    5432 online          postgres /var/lib/postgresql/15/main    \
/var/log/postgresql/postgresql-15-main.log
17  replica 5433 online,recovery postgres /var/lib/postgresql/17/replica \
/var/log/postgresql/postgresql-17-replica.log
17  old     5434 down            postgres /srv/pg/17/old                 \
/var/log/postgresql/postgresql-17-old.log
"""


@covers(postgres.PostgresClusters)
class TestPostgresClusters:
    def test_command_and_requirements(self):
        fact = postgres.PostgresClusters()
        assert fact.command() == "pg_lsclusters --no-header"
        assert fact.requires_command() == "pg_lsclusters"
        assert fact.default() == []

    def test_process(self):
        output = PG_LSCLUSTERS.splitlines()
        assert postgres.PostgresClusters().process(output) == [
            {
                "version": "15",
                "name": "main",
                "port": 5432,
                "status": "online",
                "owner": "postgres",
                "data": "/var/lib/postgresql/15/main",
            },
            {
                "version": "17",
                "name": "replica",
                "port": 5433,
                "status": "online,recovery",
                "owner": "postgres",
                "data": "/var/lib/postgresql/17/replica",
            },
            {
                "version": "17",
                "name": "old",
                "port": 5434,
                "status": "down",
                "owner": "postgres",
                "data": "/srv/pg/17/old",
            },
        ]

    def test_short_lines_are_skipped(self):
        assert postgres.PostgresClusters().process(["", "15 main 5432 online"]) == []
        assert postgres.PostgresClusters().process([]) == []


PSQL = "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "


@covers(postgres.PostgresRoles)
class TestPostgresRoles:
    def test_command_and_requirements(self):
        fact = postgres.PostgresRoles()
        assert fact.command() == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select rolname, rolcanlogin, rolreplication, rolsuper, '
            "coalesce(rolpassword, '') from pg_authid\" 2>/dev/null || true"
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == {}

    def test_process(self):
        verifier = (
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
            "EIGAsyqBQCvJyPRdiyiPLDfUXHtQ0tvbcf3gUwqNpkM="
        )
        output = [
            f"postgres\tt\tt\tt\t{verifier}",
            "pg_monitor\tf\tf\tf\t",
            f"app\tt\tf\tf\t{verifier}",
            "replicator\tt\tt\tf\t",
        ]
        assert postgres.PostgresRoles().process(output) == {
            "postgres": {
                "login": True,
                "replication": True,
                "superuser": True,
                "verifier": verifier,
            },
            "pg_monitor": {
                "login": False,
                "replication": False,
                "superuser": False,
                "verifier": "",
            },
            "app": {"login": True, "replication": False, "superuser": False, "verifier": verifier},
            "replicator": {"login": True, "replication": True, "superuser": False, "verifier": ""},
        }

    def test_lines_without_five_fields_are_skipped(self):
        output = ["psql: error: connection to server on socket failed", "app\tt\tf\tf"]
        assert postgres.PostgresRoles().process(output) == {}
        assert postgres.PostgresRoles().process([]) == {}


@covers(postgres.PostgresDatabases)
class TestPostgresDatabases:
    def test_command_and_requirements(self):
        fact = postgres.PostgresDatabases()
        assert fact.command() == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select datname, pg_get_userbyid(datdba) from pg_database" 2>/dev/null || true'
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == {}

    def test_process(self):
        output = ["postgres\tpostgres", "app\tapp", "template1\tpostgres", "template0\tpostgres"]
        assert postgres.PostgresDatabases().process(output) == {
            "postgres": "postgres",
            "app": "app",
            "template1": "postgres",
            "template0": "postgres",
        }

    def test_lines_without_a_tab_are_skipped(self):
        assert postgres.PostgresDatabases().process(["", "garbage"]) == {}


@covers(postgres.PostgresQuery)
class TestPostgresQuery:
    def test_command_and_requirements(self):
        fact = postgres.PostgresQuery()
        assert fact.command("select 1") == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select 1" 2>/dev/null || true'
        )
        assert fact.command("select extname from pg_extension", database="app") == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d app -v ON_ERROR_STOP=1 "
            '-c "select extname from pg_extension" 2>/dev/null || true'
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == []

    def test_process(self):
        output = ["max_connections\t100", "shared_buffers\t16384", "wal_level\treplica", "x\t"]
        assert postgres.PostgresQuery().process(output) == [
            ["max_connections", "100"],
            ["shared_buffers", "16384"],
            ["wal_level", "replica"],
            ["x", ""],
        ]
        assert postgres.PostgresQuery().process(["t"]) == [["t"]]
        assert postgres.PostgresQuery().process([]) == []


def test_psql_facts_share_one_psql_call():
    for command in (
        postgres.PostgresRoles().command(),
        postgres.PostgresDatabases().command(),
        postgres.PostgresQuery().command("select 1"),
    ):
        assert command.startswith(PSQL)
