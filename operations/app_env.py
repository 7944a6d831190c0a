"""The apps' connection settings: an environment file per app stack (DATABASE_URL via
PgBouncer, REDIS_URL)."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files

from galion import app_environment
from galion.ops import config_file
from galion.role import Knob, Role
from galion.validators import Problem

KNOBS = {
    # Redis databases: 0 app sessions, 1 voice cache, 2 studio sessions, 3 realtime, 4 rate
    # limits.
    "app_env_stacks": Knob(
        [
            {"name": "galion", "database": "galion", "redis_db": 0},
            {"name": "galion_studio", "database": "galion_studio", "redis_db": 2},
        ],
        "Each app stack: its database (one of postgres_databases) and its Redis database number.",
    ),
    "app_env_dir": Knob(
        "/etc/galion/env",
        "Directory of the apps' environment files (secrets: root only), one <app>.env each.",
    ),
}


def required_secrets(data) -> list[str]:
    by_name = {db["name"]: db for db in data.get("postgres_databases") or []}
    return sorted(
        {
            by_name[s["database"]]["password_secret"]
            for s in data.get("app_env_stacks") or []
            if s.get("database") in by_name
        }
        | {"REDIS_APP_PASSWORD"}
    )


def _check_stacks(name: str, data, groups) -> list[Problem]:
    """Every stack's database is one postgres_databases creates."""
    names = {db.get("name") for db in data.get("postgres_databases") or [] if isinstance(db, dict)}
    return [
        Problem(
            name,
            "app_env_stacks",
            f"{stack.get('name')!r} uses database "
            f"{stack.get('database')!r}, which postgres_databases lacks",
            "add the database or correct the name",
        )
        for stack in data.get("app_env_stacks") or []
        if stack.get("database") not in names
    ]


ROLE = Role(
    groups=("app",),
    order=50,
    knob_prefixes=("app_env_",),
    required_secrets=required_secrets,
    check_host=_check_stacks,
)


@deploy("App connection settings")
def app_env():
    data = host.data
    files.directory(
        name="Directory of the apps' environment files", path=data.app_env_dir, mode="700"
    )
    for stack in data.app_env_stacks:
        config_file(
            name=f"Environment of {stack['name']} (secret)",
            dest=app_environment.env_file(data, stack["name"]),
            mode="600",
            secret=True,
            content=app_environment.content(data, inventory, host, stack),
        )
