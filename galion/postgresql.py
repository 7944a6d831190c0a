"""What every role that touches PostgreSQL shares: which major, which cluster, how to
apply a changed setting (the postgres and backups roles both change settings), and what
the postgres and pgbouncer roles both ask of a database host: whether it is part of a
fleet, fenced or refused, the addresses the data tier binds, its login roles."""

from pyinfra import host
from pyinfra.facts.files import File

from . import replication, run_context, scram, secrets, topology
from .ops import postgres_sql
from .paths import role_files

# The distro's PostgreSQL major, keyed on os-release (ID, VERSION_ID).
DISTRO_POSTGRES = {("debian", "12"): 15, ("debian", "13"): 17, ("ubuntu", "24.04"): 16}
# The cluster pg_createcluster makes (Debian's postgresql-common layout).
CLUSTER = "main"
PSQL = "runuser -u postgres -- psql -X -Atc"


def version(data, os_release: dict) -> int:
    """`postgres_version` if set, else the distro's major."""
    if data.get("postgres_version"):
        return int(data.get("postgres_version"))
    key = (os_release.get("id"), os_release.get("version_id"))
    if key not in DISTRO_POSTGRES:
        raise ValueError(f"no default PostgreSQL for {key}: set postgres_version")
    return DISTRO_POSTGRES[key]


def config_dir(major: int) -> str:
    return f"/etc/postgresql/{major}/{CLUSTER}"


def data_dir(major: int) -> str:
    return f"/var/lib/postgresql/{major}/{CLUSTER}"


def unit(major: int) -> str:
    return f"postgresql@{major}-{CLUSTER}"


TRUE_WORDS = ("1", "true", "yes", "on")


def is_online(status: str) -> bool:
    """pg_lsclusters' status: "online", or "online,recovery" for a replica."""
    return status.split(",")[0] == "online"


def serving(clusters: list[dict], major: int) -> bool:
    """Whether a cluster of this major version is online (from the PostgresClusters fact):
    one that serves restarts only when the run allows it; one this run creates may."""
    return any(c["version"] == str(major) and is_online(c["status"]) for c in clusters)


def is_true(value) -> bool:
    """A yes/no knob from data or `--data` (where it arrives as a string)."""
    return value is True or str(value).strip().lower() in TRUE_WORDS


def restart_allowed(data) -> bool:
    """`postgres_restart_allowed`."""
    return is_true(data.get("postgres_restart_allowed"))


def reload_or_restart_command(major: int, allow_restart: bool = True) -> str:
    """Reload; if a changed setting needs a restart (pg_settings.pending_restart), restart
    only when allowed, else say that a restart is pending (and succeed)."""
    if allow_restart:
        then = f'echo "restart needed by $n setting(s)"; systemctl restart {unit(major)}'
    else:
        then = (
            'echo "restart pending: $n setting(s) wait for a restart; converge with '
            '--data postgres_restart_allowed=true in a maintenance window" >&2'
        )
    return (
        f"pg_ctlcluster {major} {CLUSTER} reload || exit 1; for _ in 1 2 3 4 5 6 7 8 9 10; do "
        f'n=$({PSQL} "select count(*) from pg_settings where pending_restart"); '
        f'[ "$n" != 0 ] && break; sleep 0.3; done; '
        f'if [ "$n" != 0 ]; then {then}; fi'
    )


# The postgres role's files: its scripts, the failover's among them (actions/failover_steps.py
# installs galion-fence and galion-promote from here).
FILES = role_files("postgres")


def in_fleet(inventory, this) -> bool:
    """Whether this database host has database peers (a primary with replicas)."""
    return bool(topology.database_peers(inventory, this))


def fenced(inventory, this) -> bool:
    """Whether failover.py fenced this host (its marker; only asked in a fleet)."""
    return in_fleet(inventory, this) and bool(this.get_fact(File, path=replication.FENCE_MARKER))


def refusal(inventory, this, major: int) -> str | None:
    """Why this `db` host must not be converged as the primary, or None (also on a
    replica: the replica's own checks decide there)."""
    if topology.is_replica(inventory, this) or not in_fleet(inventory, this):
        return None
    if fenced(inventory, this):
        return (
            "was fenced by failover.py: it is no longer the primary (move it to db_replica "
            "in the inventory: the next converge rejoins it as a replica)"
        )
    standby = this.get_fact(File, path=f"{data_dir(major)}/standby.signal")
    if standby and this.name not in run_context.PROMOTING:
        return (
            "is a standby: a replica becomes the primary through failover.py (which fences "
            "the old one first), not through a converge"
        )
    return None


def data_tier_binds(inventory, this) -> list[str]:
    """PgBouncer's and Redis' addresses beyond loopback: the private address when other
    hosts connect, the Docker bridge's when this host's app containers do."""
    gateway = topology.local_data_tier_for_containers(inventory, this)
    return topology.data_tier_bind_addresses(inventory, this) + ([gateway] if gateway else [])


def _role_sql(role: str, options: str) -> str:
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f'THEN CREATE ROLE "{role}" {options}; END IF; END $$;\n'
        f'ALTER ROLE "{role}" {options};\n'
    )


def login_role(
    role: str,
    options: str,
    secret_key: str,
    roles: dict,
    extra_sql: str = "",
    extra_ok: bool = True,
):
    """Create/alter a role; set its password as a SCRAM verifier made here, only if the
    stored one was not made from the wanted password. `roles`: the PostgresRoles fact."""
    password = secrets.get(secret_key)
    have = roles.get(role)
    if (
        have
        and have["login"]
        and not have["superuser"]
        and have["replication"] == (" REPLICATION" in f" {options}")
        and scram.matches(have["verifier"], password)
        and extra_ok
    ):
        host.noop(f"role {role} is as wanted")
        return
    postgres_sql(
        name=f"Role {role} ({secret_key}; verifier only, never the password)",
        sql=_role_sql(role, options)
        + f"ALTER ROLE \"{role}\" PASSWORD '{scram.verifier(password)}';\n"
        + extra_sql,
        secret=True,
    )
