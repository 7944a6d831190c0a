"""The content of an app stack's environment file (DATABASE_URL and DATABASE_READ_URL via
PgBouncer, REDIS_URL): written by the app_env role, hashed by the apps role, whose
containers restart when it changes. Addresses are those the app containers reach
(galion/topology.py)."""

from pyinfra.facts.server import OsRelease

from . import postgresql, replication, run_context, secrets, topology
from .facts.replication import PostgresReplicaState
from .ops import render


def serving_replicas(inventory) -> set[str]:
    """The replicas that stream after this run: reached by it, not fenced by a failover in
    it, and not refused by the postgres role (a former primary failover.py could not fence
    holds writes of its own: what it answers is not the primary's data)."""
    active = {h.name for h in inventory.get_active_hosts()}
    primary = topology.primary(inventory)
    serving = set()
    for h in topology.database_replicas(inventory):
        if h.name not in active or h.name in run_context.FENCED_OR_UNREACHED:
            continue
        state = h.get_fact(
            PostgresReplicaState,
            major=postgresql.version(h.data, h.get_fact(OsRelease)),
            primary_conninfo=replication.standby_conninfo(primary, h),
        )
        action, _ = replication.replica_action(state, h.data.get("postgres_reseed") == h.name)
        if action != "refuse":
            serving.add(h.name)
    return serving


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
        read_host=topology.read_database_address(inventory, host, serving_replicas(inventory)),
        pgbouncer_port=data.pgbouncer_port,
        database=db["name"],
        redis_user=data.redis_app_user,
        redis_password=secrets.get("REDIS_APP_PASSWORD"),
        redis_port=data.redis_port,
        redis_db=stack["redis_db"],
    )
