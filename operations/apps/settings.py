"""Each service's rollout settings: the shell variables galion-rollout reads, the last
one a hash of everything its container is made from."""

import hashlib
import json
import shlex

from pyinfra import host, inventory

from galion import app_environment, topology
from galion.ops import config_file
from galion.paths import UPSTREAM_SERVERS_DIR

CONF_DIR = "/etc/galion/apps"

# Where the containers' ports listen: loopback. The nginx in front of them (the edge's
# on the single box, the app proxy's on a fleet's app host) is on the same host.
PUBLISH_ADDRESS = "127.0.0.1"


def wanted(data) -> dict[str, str]:
    """This host's settings of each service, by service name."""
    app_hosts = topology.group(inventory, "app")
    migrates = not app_hosts or app_hosts[0].name == host.name
    stacks = {s["name"]: s for s in data.app_env_stacks}
    return {
        service["name"]: service_conf(
            data,
            service,
            PUBLISH_ADDRESS,
            app_environment.content(data, inventory, host, stacks[service["stack"]]),
            migrates,
            "db" in host.groups,
        )
        for service in data.apps_services
    }


def write(wanted: dict[str, str]) -> None:
    for name, conf in wanted.items():
        config_file(
            name=f"Rollout settings of {name}",
            dest=f"{CONF_DIR}/{name}.conf",
            mode="600",
            content=conf,
        )


def service_conf(
    data, service: dict, bind: str, env_content: str, migrates: bool = True, db_here: bool = True
) -> str:
    """The service's rollout settings (shell variables galion-rollout reads); the last
    line is a hash of everything a container is made from, its environment included.
    `migrates`: this host runs the migrations (the first app host); `db_here`: it also
    runs the database, so it can back it up before one."""
    port = data.nginx_tls_upstream_ports[service["upstream"]]
    values = {
        "IMAGE": service["image"],
        "UPSTREAM": service["upstream"],
        "BIND": bind,
        "PORT_A": port,
        "PORT_B": port + data.apps_alternate_port_offset,
        "CONTAINER_PORT": service["container_port"],
        "MEMORY_MB": service["memory_mb"],
        "CPUS": service["cpus"],
        "OOM_SCORE_ADJ": data.apps_oom_score_adjust,
        "ENV_FILE": app_environment.env_file(data, service["stack"]),
        "HEALTH_PATH": data.apps_health_path,
        "HEALTH_INTERVAL": data.apps_health_check_interval_seconds or "",
        "HEALTH_TIMEOUT": data.apps_health_timeout_seconds,
        "WATCH_SECONDS": data.apps_watch_seconds,
        "DRAIN_SECONDS": service["drain_seconds"],
        "ERROR_PERCENT": data.apps_rollback_error_percent,
        "MIN_REQUESTS": data.apps_rollback_min_requests,
        "SERVERS_FILE": f"{UPSTREAM_SERVERS_DIR}/{service['upstream']}.servers",
        "ACCESS_LOG": "/var/log/nginx/access.log",
        # nginx writes its lines up to this late: the watch lasts that much longer.
        "LOG_FLUSH": data.nginx_tls_access_log_flush_seconds,
        "LOG_MAX_SIZE": data.docker_log_max_size,
        "LOG_MAX_FILES": data.docker_log_max_files,
        "MIGRATE": (service.get("migrate") or "") if migrates else "",
        "MIGRATE_TIMEOUT": data.apps_migrate_timeout_seconds,
        "BACKUP_BEFORE_MIGRATE": str(bool(data.apps_backup_before_migrate and db_here)).lower(),
    }
    body = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())
    # The container's make-up: image, limits, ports, environment. Watch settings are not
    # part of it: changing them must not restart anything.
    made_of = {
        k: values[k]
        for k in (
            "IMAGE",
            "BIND",
            "PORT_A",
            "PORT_B",
            "CONTAINER_PORT",
            "MEMORY_MB",
            "CPUS",
            "OOM_SCORE_ADJ",
            "HEALTH_INTERVAL",
            "ENV_FILE",
            "LOG_MAX_SIZE",
            "LOG_MAX_FILES",
        )
    }
    digest = hashlib.sha256(
        (json.dumps(made_of, sort_keys=True) + env_content).encode()
    ).hexdigest()[:16]
    return (
        "# Managed by galion-infra (operations/apps.py): read by galion-rollout.\n"
        + body
        + f"CONFIG_HASH={digest}\n"
    )


def config_hash(conf: str) -> str:
    return conf.rsplit("CONFIG_HASH=", 1)[1].strip()
