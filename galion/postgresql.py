"""What every role that touches PostgreSQL shares: which major, which cluster, and how
to apply a changed setting (the postgres and backups roles both change settings)."""

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
