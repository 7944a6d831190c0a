"""What the PostgreSQL and PgBouncer checks share: psql as postgres, the server's major,
an app's environment, who listens on a port, and logins that must fail."""

from tests.inventory import skip_unless_also_app


def psql(node, sql: str, database: str = "postgres") -> str:
    return node.host.check_output(
        f"runuser -u postgres -- psql -X -AtF '|' -d {database} -c \"{sql}\""
    )


def major(node) -> int:
    return int(psql(node, "show server_version_num")) // 10000


def app_env_shell(node, app: str, script: str):
    """Run bash with the app's environment file loaded: no secret on a command line."""
    skip_unless_also_app(node)
    env = f"{node.data['app_env_dir']}/{app}.env"
    return node.host.run(f"bash -c 'set -a; . {env}; set +a; {script}'")


def listening_addresses(node, port: int) -> set[str]:
    listeners = node.host.check_output(f"ss -Htln 'sport = :{port}'")
    return {line.split()[3].rsplit(":", 1)[0] for line in listeners.splitlines()}


def assert_wrong_or_no_password_is_refused(node, port: int) -> None:
    wrong = node.host.run(
        f"psql -X -w 'postgresql://galion:not-the-password@127.0.0.1:{port}/galion' -c 'select 1'"
    )
    assert wrong.rc != 0 and "authentication failed" in wrong.stderr
    none = node.host.run(f"psql -X -w -h 127.0.0.1 -p {port} -U galion galion -c 'select 1'")
    assert none.rc != 0
    assert "no password supplied" in none.stderr or "authentication failed" in none.stderr
