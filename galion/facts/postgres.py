"""Facts of a PostgreSQL server: its clusters, roles, databases, and read-only queries."""

from typing import ClassVar

from ._base import _Fact


def _psql(sql: str, database: str = "postgres") -> str:
    """A psql call as the postgres superuser, tab-separated, unaligned, no headers."""
    return (
        f"runuser -u postgres -- psql -X -q -AtF '\t' -d {database} -v ON_ERROR_STOP=1 -c \"{sql}\""
    )


class PostgresClusters(_Fact):
    """`pg_lsclusters`, one dict per cluster.

    `[{"version": "15", "name": "main", "port": 5432, "status": "online", ...}]`.
    """

    required_command = "pg_lsclusters"
    default_value: ClassVar[list] = []

    def command(self):
        return "pg_lsclusters --no-header"

    def process(self, output):
        clusters = []
        for line in output:
            parts = line.split()
            if len(parts) >= 6:
                clusters.append(
                    {
                        "version": parts[0],
                        "name": parts[1],
                        "port": int(parts[2]),
                        "status": parts[3],
                        "owner": parts[4],
                        "data": parts[5],
                    }
                )
        return clusters


class PostgresRoles(_Fact):
    """`{role: {"login": bool, "replication": bool, "superuser": bool, "verifier": str}}`.

    The verifier is what PostgreSQL stores (a salted SCRAM hash, never the password);
    it is read so the wanted password can be checked against it locally.
    """

    required_command = "psql"
    default_value: ClassVar[dict] = {}

    def command(self):
        return (
            _psql(
                "select rolname, rolcanlogin, rolreplication, rolsuper, "
                "coalesce(rolpassword, '') from pg_authid"
            )
            + " 2>/dev/null || true"
        )

    def process(self, output):
        roles = {}
        for line in output:
            parts = line.split("\t")
            if len(parts) == 5:
                roles[parts[0]] = {
                    "login": parts[1] == "t",
                    "replication": parts[2] == "t",
                    "superuser": parts[3] == "t",
                    "verifier": parts[4],
                }
        return roles


class PostgresDatabases(_Fact):
    """`{database: owner}`."""

    required_command = "psql"
    default_value: ClassVar[dict] = {}

    def command(self):
        return (
            _psql("select datname, pg_get_userbyid(datdba) from pg_database")
            + " 2>/dev/null || true"
        )

    def process(self, output):
        return dict(line.split("\t", 1) for line in output if "\t" in line)


class PostgresQuery(_Fact):
    """Rows of one read-only query as lists of strings (tab-separated)."""

    required_command = "psql"
    default_value: ClassVar[list] = []

    def command(self, sql, database="postgres"):
        return _psql(sql, database) + " 2>/dev/null || true"

    def process(self, output):
        return [line.split("\t") for line in output]
