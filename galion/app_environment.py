"""The content of an app stack's environment file (DATABASE_URL and DATABASE_READ_URL via
PgBouncer, REDIS_URL): written by the app_env role, hashed by the apps role, whose
containers restart when it changes. Addresses are those the app containers reach
(galion/topology.py)."""

from . import secrets, topology
from .ops import render


def env_file(data, stack_name: str) -> str:
    return f"{data.app_env_dir}/{stack_name}.env"


def content(data, inventory, host, stack: dict) -> str:
    databases = {db["name"]: db for db in data.postgres_databases}
    db = databases[stack["database"]]
    db_host = topology.database_address(inventory, host)
    return render(
        "app_env/app.env.j2",
        db_user=db["owner"],
        db_password=secrets.get(db["password_secret"]),
        db_host=db_host,
        read_host=topology.read_database_address(inventory, host),
        pgbouncer_port=data.pgbouncer_port,
        database=db["name"],
        redis_user=data.redis_app_user,
        redis_password=secrets.get("REDIS_APP_PASSWORD"),
        redis_port=data.redis_port,
        redis_db=stack["redis_db"],
    )
