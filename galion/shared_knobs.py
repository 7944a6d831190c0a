"""The knobs more than one role reads, declared once as a role declares its own
(galion/role.py: Knob): the operator's mailbox, the data tier's ports and databases,
the Docker bridge the data tier binds on, the exporters' ports. group_data/all.py
gives them to every host; preflight checks them; docs/KNOBS.md lists them."""

import ipaddress

from .role import Knob
from .secrets import example_keys
from .validators import (
    EMAIL,
    IDENTIFIER,
    Problem,
    int_between,
    is_interface,
    is_port,
    matches,
    says,
)

is_unprivileged_port = says("is not an unprivileged TCP port")(int_between(1024, 65535))


@says(
    "is not a list of {name, owner, password_secret} (lowercase names, secret listed in "
    ".env.example)"
)
def _databases_ok(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(db, dict)
            and IDENTIFIER.match(str(db.get("name", "")))
            and IDENTIFIER.match(str(db.get("owner", "")))
            and str(db.get("password_secret", "")) in example_keys()
            for db in value
        )
    )


def _small_enough_bridge(value) -> bool:
    return is_interface(value) and ipaddress.ip_interface(value).network.prefixlen <= 28


KNOBS = {
    # --- operator -----------------------------------------------------------------------
    "operator_email": Knob(
        "ops@galion.app",
        "Receives Let's Encrypt expiry notices, unattended-upgrades reports and alerts.",
        check=matches(EMAIL),
        problem="is not an e-mail address",
        fix="set a mailbox the on-call reads, e.g. {default}",
    ),
    # --- the data tier (postgres, redis, backups and app_env roles read these) ----------
    "postgres_version": Knob(
        None,
        "PostgreSQL major version; None takes the distro's (Debian 12: 15, Debian 13: 17, "
        "Ubuntu 24.04: 16).",
        check=lambda v: v is None or v in (13, 14, 15, 16, 17, 18),
        problem="is not a PostgreSQL major version",
        fix="use {default} (the distro's) or e.g. 16",
    ),
    "postgres_port": Knob(
        5432, "TCP port of PostgreSQL itself; the apps use PgBouncer's.", check=is_port
    ),
    "postgres_databases": Knob(
        [
            {"name": "galion", "owner": "galion", "password_secret": "POSTGRES_GALION_PASSWORD"},
            {
                "name": "galion_studio",
                "owner": "galion_studio",
                "password_secret": "POSTGRES_GALION_STUDIO_PASSWORD",
            },
        ],
        "The apps' databases, each owned by its own login role; the password of each role is "
        "the secret named in password_secret.",
        check=_databases_ok,
        fix="see galion/shared_knobs.py",
    ),
    # Off: such a change is reloaded and reported as "restart pending" until a run with
    # --data postgres_restart_allowed=true (a maintenance window). The first install
    # always may.
    "postgres_restart_allowed": Knob(
        False,
        "Let this run restart PostgreSQL when a changed setting needs it (shared_buffers, "
        "max_connections, archive_mode, ...).",
    ),
    "pgbouncer_port": Knob(
        6432,
        "Port the apps connect to (their DATABASE_URL points here, not at PostgreSQL).",
        check=is_port,
    ),
    "redis_port": Knob(6379, "Redis TCP port.", check=is_port),
    "redis_app_user": Knob(
        "galion", "Redis ACL user of the apps (all keys, no dangerous commands)."
    ),
    # --- the app tier (docker, apps, app_env, and the data tier's binds read this) ------
    # Must not overlap the private network, the operator's addresses or
    # docker_address_pools.
    "docker_bridge_address": Knob(
        "172.19.0.1/24",
        "Docker's default bridge on app hosts (address/prefix): the app containers live here "
        "and reach PgBouncer and Redis on the box at this address.",
        check=_small_enough_bridge,
        problem="is not an address/prefix of at most /28 (e.g. 172.19.0.1/24)",
        fix="use {default}, or a range your private network does not use",
    ),
    # --- metrics (each role's exporter, and monitoring's scrape targets, read these) ----
    "node_exporter_port": Knob(
        9100,
        "node_exporter on every host (host metrics, and the textfile metrics of backups and "
        "containers).",
        check=is_unprivileged_port,
    ),
    "postgres_exporter_port": Knob(
        9187,
        "postgres_exporter on database hosts (connects as postgres_monitoring_role).",
        check=is_unprivileged_port,
    ),
    "redis_exporter_port": Knob(
        9121,
        "redis_exporter on the Redis host (logs in as redis_exporter_user: statistics only).",
        check=is_unprivileged_port,
    ),
    "nginx_tls_exporter_port": Knob(
        9113,
        "nginx-prometheus-exporter on edge hosts (reads stub_status on loopback).",
        check=is_unprivileged_port,
    ),
    "nginx_tls_status_port": Knob(
        8081,
        "nginx's status listener, on loopback of edge hosts: stub_status for its exporter, "
        "and the apps' own metrics (nginx_tls_metrics_upstreams) for a Prometheus on the same "
        "host.",
        check=is_unprivileged_port,
    ),
}

_DISTINCT_PORTS = ("postgres_port", "pgbouncer_port", "redis_port")


def check_host(name: str, data) -> list[Problem]:
    """The checks of several shared knobs together."""
    ports = [data.get(k) for k in _DISTINCT_PORTS]
    if len(set(map(str, ports))) == len(ports):
        return []
    defaults = ", ".join(str(KNOBS[k].default) for k in _DISTINCT_PORTS)
    return [
        Problem(
            name,
            "/".join(_DISTINCT_PORTS),
            f"{ports} are not three different ports",
            f"use {defaults}",
        )
    ]
