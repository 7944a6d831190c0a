"""The apps' connection settings: an environment file per app stack (DATABASE_URL via PgBouncer, REDIS_URL)."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files

from galion import secrets
from galion.ops import config_file, render
from operations.postgres import private_address


def required_secrets(data) -> list[str]:
    by_name = {db["name"]: db for db in data.get("postgres_databases") or []}
    return sorted({by_name[s["database"]]["password_secret"] for s in data.get("app_stacks") or []
                   if s.get("database") in by_name} | {"REDIS_APP_PASSWORD"})


def database_host() -> str:
    """Where PgBouncer and Redis answer for this app host: loopback on the same box."""
    primary = inventory.get_group("db", [])
    if not primary or primary[0].name == host.name:
        return "127.0.0.1"
    return private_address(primary[0])


@deploy("App connection settings")
def app_env():
    data = host.data
    databases = {db["name"]: db for db in data.postgres_databases}
    files.directory(name="Directory of the apps' environment files", path=data.app_env_dir,
                    mode="700")
    for stack in data.app_stacks:
        db = databases[stack["database"]]
        config_file(
            name=f"Environment of {stack['name']} (secret)", dest=f"{data.app_env_dir}/{stack['name']}.env",
            mode="600", secret=True,
            content=render("app_env/app.env.j2", db_user=db["owner"],
                           db_password=secrets.get(db["password_secret"]), db_host=database_host(),
                           pgbouncer_port=data.pgbouncer_port, database=db["name"],
                           redis_user=data.redis_app_user,
                           redis_password=secrets.get("REDIS_APP_PASSWORD"),
                           redis_port=data.redis_port, redis_db=stack["redis_db"]))
