# Knobs every host sees. A role's own knobs live in its module (operations/<role>.py:
# KNOBS, a comment above each) and reach every host from the end of this file; here
# are only the knobs that more than one role reads (checked in galion/preflight.py:
# SHARED_CHECKS). One key lives in one place (tests/unit/test_roles.py checks), so
# group precedence never decides a value. Override per host in the inventory; secrets
# never go here (see .env.example).

# --- operator -------------------------------------------------------------------------
# Receives Let's Encrypt expiry notices, unattended-upgrades reports and alerts.
operator_email = "ops@galion.app"

# --- the data tier (postgres, redis, backups and app_env roles read these) ------------
# PostgreSQL major version; None takes the distro's (Debian 12: 15, Debian 13: 17,
# Ubuntu 24.04: 16).
postgres_version = None
# TCP port of PostgreSQL itself; the apps use PgBouncer's.
postgres_port = 5432
# The apps' databases, each owned by its own login role; the password of each role is
# the secret named in password_secret.
postgres_databases = [
    {"name": "galion", "owner": "galion", "password_secret": "POSTGRES_GALION_PASSWORD"},
    {
        "name": "galion_studio",
        "owner": "galion_studio",
        "password_secret": "POSTGRES_GALION_STUDIO_PASSWORD",
    },
]
# Let this run restart PostgreSQL when a changed setting needs it (shared_buffers,
# max_connections, archive_mode, ...). Off: such a change is reloaded and reported as
# "restart pending" until a run with --data postgres_restart_allowed=true (a maintenance
# window). The first install always may.
postgres_restart_allowed = False
# Port the apps connect to (their DATABASE_URL points here, not at PostgreSQL).
pgbouncer_port = 6432
# Redis TCP port.
redis_port = 6379
# Redis ACL user of the apps (all keys, no dangerous commands).
redis_app_user = "galion"

# --- the app tier (docker, apps, app_env, and the data tier's binds read this) ---------
# Docker's default bridge on app hosts (address/prefix): the app containers live here and
# reach PgBouncer and Redis on the box at this address. Must not overlap the private
# network, the operator's addresses or docker_address_pools.
docker_bridge_address = "172.19.0.1/24"

# --- metrics (each role's exporter, and monitoring's scrape targets, read these) -------
# node_exporter on every host (host metrics, and the textfile metrics of backups and
# containers).
node_exporter_port = 9100
# postgres_exporter on database hosts (connects as postgres_monitoring_role).
postgres_exporter_port = 9187
# redis_exporter on the Redis host (logs in as redis_exporter_user: statistics only).
redis_exporter_port = 9121
# nginx-prometheus-exporter on edge hosts (reads stub_status on loopback).
nginx_exporter_port = 9113
# nginx's status listener, on loopback of edge hosts: stub_status for its exporter, and
# the apps' own metrics (nginx_metrics_upstreams) for a Prometheus on the same host.
nginx_status_port = 8081

# --- every role's own knobs -------------------------------------------------------------
from operations import knobs as _role_knobs  # noqa: E402 (the shared knobs come first)

globals().update(_role_knobs())
