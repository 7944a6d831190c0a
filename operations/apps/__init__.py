"""The apps' containers: one per service from data (pinned image, environment from its
stack's secret file, memory and CPU limits, log limits), published on loopback (or the
private address in a fleet) and updated with no failed request by galion-rollout
(files/apps/galion-rollout): the new container beside the old, health gate, nginx
switch, a watch window with automatic rollback, then the old one drains.

Containers run with plain `docker run` and Docker's restart policy, as Kamal does: the
same commands on Docker 20.10 (Debian 12, no Compose v2), 26 (Debian 13) and Ubuntu's."""

import base64
import hashlib
import json
import re
import shlex
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import apt, files, server

from galion import app_environment, secrets, topology
from galion.facts import AppContainers, DockerImages, MemoryTotalMb
from galion.ops import SCRIPTS_DIR, config_file, local_file, one_host_at_a_time, shell_script
from galion.preflight import Problem, int_between, matches
from galion.role import Role

CONF_DIR = "/etc/galion/apps"
STATE_DIR = "/var/lib/galion/apps"  # galion-rollout's markers of finished rollouts
ROLLOUT = f"{SCRIPTS_DIR}/galion-rollout"
IMAGES_DIR = "/var/lib/galion/images"
SERVERS_DIR = "/etc/nginx/galion-upstreams"
REPO = Path(__file__).resolve().parent.parent
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")

KNOBS = {
    # The apps' services (the plan's port map is nginx_upstream_ports[upstream]). Each:
    # name, the nginx upstream it serves, stack (app_stacks entry whose environment file
    # it reads), image pinned by tag or digest, container_port (where the image listens;
    # it also gets PORT), memory_mb and cpus (limits), drain_seconds (how long the old
    # container keeps its open connections after cutover: longer for WebSockets),
    # migrate (a command run as `/bin/sh -c` in the new image, its ENTRYPOINT bypassed,
    # before cutover when the image changes, on the first app host only, or None; it
    # must leave a schema the previous image still works with, since a rollback after
    # cutover runs the previous image on the migrated schema), and
    # optionally image_archive (a `docker save` file on the operator's machine, loaded
    # when the host lacks the image: hosts without a registry).
    "apps_services": [
        {
            "name": "galion-frontend",
            "upstream": "galion_frontend",
            "stack": "galion",
            "image": "ghcr.io/galion-app/galion-frontend:1.0.0",
            "container_port": 3000,
            "memory_mb": 384,
            "cpus": 0.5,
            "drain_seconds": 30,
            "migrate": None,
        },
        {
            "name": "galion-api",
            "upstream": "galion_api",
            "stack": "galion",
            "image": "ghcr.io/galion-app/galion-api:1.0.0",
            "container_port": 8000,
            "memory_mb": 1536,
            "cpus": 1.5,
            "drain_seconds": 30,
            "migrate": "alembic upgrade head",
        },
        {
            "name": "galion-voice",
            "upstream": "galion_voice",
            "stack": "galion",
            "image": "ghcr.io/galion-app/galion-voice:1.0.0",
            "container_port": 8080,
            "memory_mb": 1536,
            "cpus": 1.0,
            "drain_seconds": 300,
            "migrate": None,
        },
        {
            "name": "studio-frontend",
            "upstream": "studio_frontend",
            "stack": "galion_studio",
            "image": "ghcr.io/galion-app/studio-frontend:1.0.0",
            "container_port": 3000,
            "memory_mb": 512,
            "cpus": 0.5,
            "drain_seconds": 30,
            "migrate": None,
        },
        {
            "name": "studio-api",
            "upstream": "studio_api",
            "stack": "galion_studio",
            "image": "ghcr.io/galion-app/studio-api:1.0.0",
            "container_port": 8000,
            "memory_mb": 1536,
            "cpus": 1.5,
            "drain_seconds": 30,
            "migrate": "alembic upgrade head",
        },
        {
            "name": "galion-realtime",
            "upstream": "galion_realtime",
            "stack": "galion_studio",
            "image": "ghcr.io/galion-app/galion-realtime:1.0.0",
            "container_port": 8080,
            "memory_mb": 512,
            "cpus": 0.5,
            "drain_seconds": 300,
            "migrate": None,
        },
    ],
    # Private registry host to log in to (e.g. ghcr.io) with the REGISTRY_USER and
    # REGISTRY_PASSWORD secrets; None: public images or images loaded from archives.
    "apps_registry": None,
    # HTTP path every service answers 200 on when it is ready.
    "apps_health_path": "/health",
    # Seconds between Docker's runs of each image's HEALTHCHECK (`--health-interval`, the
    # plan's 10 s); None keeps the image's own. Each run starts a process in the container.
    "apps_health_check_interval_seconds": 10,
    # Seconds a new container has to turn healthy before it is removed and the run fails.
    "apps_health_timeout_seconds": 60,
    # Seconds the new version is watched after cutover (health, 5xx rate) before the old
    # container drains; a failure in the window switches back to the old one.
    "apps_watch_seconds": 30,
    # Rollback when more than this percentage of requests answer 5xx in the window...
    "apps_rollback_error_percent": 5,
    # ...counted once at least this many requests went to the new container.
    "apps_rollback_min_requests": 20,
    # Each service runs on its plan port or on plan port + this offset during an update.
    "apps_alternate_port_offset": 10000,
    # Back up the database (pgBackRest, incremental) before a migration runs, on a host
    # that also runs the database (a fleet's app hosts rely on the db host's schedule).
    "apps_backup_before_migrate": True,
    # Seconds a migration may run before it is stopped and the rollout fails.
    "apps_migrate_timeout_seconds": 600,
    # Services updated at once. During its update a service runs two containers, so each
    # one beyond the first adds its memory_mb to the plan; 1 uses the OS reserve instead.
    "apps_parallel_rollouts": 1,
    # Memory kept for the OS, nginx and the page cache when checking the memory plan.
    "apps_os_reserve_mb": 1536,
}


def required_secrets(data) -> list[str]:
    return ["REGISTRY_USER", "REGISTRY_PASSWORD"] if data.get("apps_registry") else []


def _service_ok(s, data) -> bool:
    ports = data.get("nginx_upstream_ports") or {}
    stacks = {st.get("name") for st in data.get("app_stacks") or [] if isinstance(st, dict)}
    return (
        isinstance(s, dict)
        and bool(SERVICE_NAME.match(str(s.get("name"))))
        and s.get("upstream") in ports
        and s.get("stack") in stacks
        and bool(IMAGE.match(str(s.get("image"))))
        and ":" in str(s.get("image")).rsplit("/", 1)[-1]
        and not str(s.get("image")).endswith(":latest")
        and isinstance(s.get("container_port"), int)
        and 1 <= s["container_port"] <= 65535
        and isinstance(s.get("memory_mb"), int)
        and s["memory_mb"] >= 32
        and isinstance(s.get("cpus"), int | float)
        and s["cpus"] > 0
        and isinstance(s.get("drain_seconds"), int)
        and 0 <= s["drain_seconds"] <= 3600
        and (s.get("migrate") is None or isinstance(s.get("migrate"), str))
    )


def _check_services(name: str, data, groups) -> list[Problem]:
    services = data.get("apps_services")
    if not isinstance(services, list) or not services:
        return [Problem(name, "apps_services", "is not a list of services", "see its comment")]
    problems = [
        Problem(
            name,
            f"apps_services[{i}]",
            f"{s.get('name') if isinstance(s, dict) else s!r} is not a valid service",
            "name (lowercase, -), upstream in nginx_upstream_ports, stack in app_stacks, "
            "image pinned by tag (not latest) or digest, container_port, memory_mb >= 32, "
            "cpus > 0, drain_seconds 0-3600, migrate None or a command",
        )
        for i, s in enumerate(services)
        if not _service_ok(s, data)
    ]
    names = [s.get("name") for s in services if isinstance(s, dict)]
    upstreams = [s.get("upstream") for s in services if isinstance(s, dict)]
    for key, values in (("name", names), ("upstream", upstreams)):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            problems.append(
                Problem(name, "apps_services", f"{key} {twice} appears twice", "one each")
            )
    offset = data.get("apps_alternate_port_offset")
    ports = data.get("nginx_upstream_ports") or {}
    if isinstance(offset, int) and any(p + offset > 65535 for p in ports.values()):
        problems.append(
            Problem(
                name,
                "apps_alternate_port_offset",
                "puts a service port above 65535",
                "use 10000",
            )
        )
    return problems


ROLE = Role(
    groups=("app",),
    # After the edge and the app proxy: a rollout switches the nginx upstreams they made.
    order=70,
    knob_prefixes=("apps_",),
    required_secrets=required_secrets,
    check_host=_check_services,
    checks=(
        ("apps_registry", lambda v: v is None or IMAGE.match(str(v)), "is not a host", "ghcr.io"),
        (
            "apps_health_path",
            matches(re.compile(r"^/[A-Za-z0-9._/-]*$")),
            "is not a path",
            "/health",
        ),
        (
            "apps_health_check_interval_seconds",
            lambda v: v is None or int_between(1, 3600)(v),
            "is not 1-3600 s or None",
            "use 10",
        ),
        ("apps_health_timeout_seconds", int_between(5, 3600), "is not 5-3600 s", "use 60"),
        ("apps_watch_seconds", int_between(0, 3600), "is not 0-3600 s", "use 30"),
        ("apps_rollback_error_percent", int_between(0, 100), "is not a percentage", "use 5"),
        ("apps_rollback_min_requests", int_between(1, 10**6), "is not a count", "use 20"),
        ("apps_alternate_port_offset", int_between(1, 60000), "is not a port offset", "10000"),
        ("apps_backup_before_migrate", lambda v: isinstance(v, bool), "is not a bool", "True"),
        ("apps_migrate_timeout_seconds", int_between(10, 86400), "is not 10-86400 s", "600"),
        ("apps_os_reserve_mb", int_between(256, 10**7), "is not MB", "use 1536"),
        ("apps_parallel_rollouts", int_between(1, 64), "is not a count 1-64", "use 1"),
    ),
)


def memory_plan(data, groups) -> dict[str, int]:
    """What may be resident at once on this host, in MB: the apps' limits, and the data
    tier's budgets when it runs here too."""
    plan = {s["name"]: s["memory_mb"] for s in data.apps_services}
    if "db" in groups:
        plan["PostgreSQL (postgres_memory_budget_mb)"] = data.postgres_memory_budget_mb
        plan["Redis (redis_maxmemory_mb)"] = data.redis_maxmemory_mb
    plan["OS reserve (apps_os_reserve_mb)"] = data.apps_os_reserve_mb
    extra = sorted((s["memory_mb"] for s in data.apps_services), reverse=True)
    headroom = sum(extra[: max(0, data.apps_parallel_rollouts - 1)])
    if headroom:
        plan["second containers of parallel updates (apps_parallel_rollouts)"] = headroom
    return plan


def check_memory_plan(plan: dict[str, int], total_mb: int, host_name: str) -> None:
    if sum(plan.values()) > total_mb:
        parts = " + ".join(f"{k} {v}" for k, v in plan.items())
        raise DeployError(
            f"{host_name}: the memory plan needs {sum(plan.values())} MB ({parts}) but the "
            f"host has {total_mb} MB: lower the apps' memory_mb, the data tier's budgets or "
            "apps_os_reserve_mb"
        )


# Where the containers' ports listen: loopback. The nginx in front of them (the edge's
# on the single box, the app proxy's on a fleet's app host) is on the same host.
PUBLISH_ADDRESS = "127.0.0.1"


def service_conf(
    data, service: dict, bind: str, env_content: str, migrates: bool = True, db_here: bool = True
) -> str:
    """The service's rollout settings (shell variables galion-rollout reads); the last
    line is a hash of everything a container is made from, its environment included.
    `migrates`: this host runs the migrations (the first app host); `db_here`: it also
    runs the database, so it can back it up before one."""
    port = data.nginx_upstream_ports[service["upstream"]]
    values = {
        "IMAGE": service["image"],
        "UPSTREAM": service["upstream"],
        "BIND": bind,
        "PORT_A": port,
        "PORT_B": port + data.apps_alternate_port_offset,
        "CONTAINER_PORT": service["container_port"],
        "MEMORY_MB": service["memory_mb"],
        "CPUS": service["cpus"],
        "ENV_FILE": app_environment.env_file(data, service["stack"]),
        "HEALTH_PATH": data.apps_health_path,
        "HEALTH_INTERVAL": data.apps_health_check_interval_seconds or "",
        "HEALTH_TIMEOUT": data.apps_health_timeout_seconds,
        "WATCH_SECONDS": data.apps_watch_seconds,
        "DRAIN_SECONDS": service["drain_seconds"],
        "ERROR_PERCENT": data.apps_rollback_error_percent,
        "MIN_REQUESTS": data.apps_rollback_min_requests,
        "SERVERS_FILE": f"{SERVERS_DIR}/{service['upstream']}.servers",
        "ACCESS_LOG": "/var/log/nginx/access.log",
        # nginx writes its lines up to this late: the watch lasts that much longer.
        "LOG_FLUSH": data.nginx_access_log_flush_seconds,
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


def live_slot(service: dict, data, live_ports: dict) -> str | None:
    """The slot ("a": plan port, "b": plan port + offset) nginx's servers file points
    at, or None."""
    base = data.nginx_upstream_ports[service["upstream"]]
    pair = {base: "a", base + data.apps_alternate_port_offset: "b"}
    return pair.get(live_ports.get(service["upstream"]))


def up_to_date(
    service: dict, conf: str, data, containers: dict, live_ports: dict, finished: dict
) -> bool:
    """The live container (the one nginx's servers file points at) runs with this hash,
    its rollout finished (galion-rollout's marker: watch passed, old container gone) and
    no other container of the service is left. Anything else is galion-rollout's to
    sort out, under its lock: a rollout killed halfway is resumed, not guessed at here."""
    slot = live_slot(service, data, live_ports)
    live = containers.get(f"{service['name']}-{slot}") if slot else None
    wanted = config_hash(conf)
    return (
        bool(live)
        and live["running"]
        and live["hash"] == wanted
        and finished.get(service["name"]) == wanted
        and not stale_containers(service, data, containers, live_ports)
    )


def rollout_command(names: list[str], parallel: int) -> str:
    """Roll the services out, `parallel` at a time; fails if any rollout failed (each
    failure names its service)."""
    if len(names) == 1 or parallel == 1:
        return " && ".join(f"{ROLLOUT} {shlex.quote(n)}" for n in names)
    listed = " ".join(shlex.quote(n) for n in names)
    return f"printf '%s\\n' {listed} | xargs -P {parallel} -n 1 {ROLLOUT}"


def stale_containers(service: dict, data, containers: dict, live_ports: dict) -> list[str]:
    """The service's containers other than the live one (nginx's servers file)."""
    live = live_slot(service, data, live_ports)
    return [
        f"{service['name']}-{slot}"
        for slot in ("a", "b")
        if slot != live and f"{service['name']}-{slot}" in containers
    ]


def _registry_login():
    data = host.data
    if not data.apps_registry:
        return
    auth = base64.b64encode(
        f"{secrets.get('REGISTRY_USER')}:{secrets.get('REGISTRY_PASSWORD')}".encode()
    ).decode()
    files.directory(name="Docker client config directory", path="/root/.docker", mode="700")
    config_file(
        name=f"Registry login for {data.apps_registry} (secret)",
        dest="/root/.docker/config.json",
        mode="600",
        secret=True,
        content=json.dumps({"auths": {data.apps_registry: {"auth": auth}}}, indent=2) + "\n",
    )


def _image_archives(services: list[dict]):
    """Load images from `docker save` archives for services that name one, when the
    host lacks the image (no registry needed)."""
    present = host.get_fact(DockerImages)
    archives = {s["image_archive"] for s in services if s.get("image_archive")}
    if not archives:
        return
    files.directory(name="Directory of image archives", path=IMAGES_DIR, mode="700")
    for archive in sorted(archives):
        wanted = [s["image"] for s in services if s.get("image_archive") == archive]
        if all(image in present for image in wanted):
            continue
        remote = f"{IMAGES_DIR}/{Path(archive).name}"
        local_file(
            name=f"Upload image archive {Path(archive).name}", src=archive, dest=remote, mode="600"
        )
        server.shell(
            name=f"Load images from {Path(archive).name}",
            commands=[f"docker load -q -i {shlex.quote(remote)}"],
        )


@deploy("App services")
def apps():
    data = host.data
    check_memory_plan(memory_plan(data, host.groups), host.get_fact(MemoryTotalMb), host.name)
    apt.packages(name="curl for the health checks", packages=["curl"], no_recommends=True)
    shell_script(
        REPO / "files" / "apps" / "galion-rollout",
        title="galion-rollout (zero-downtime update with rollback)",
    )
    files.directory(name="Directory of the services' rollout settings", path=CONF_DIR, mode="700")
    _registry_login()
    _image_archives(data.apps_services)
    containers, live_ports, finished = host.get_fact(
        AppContainers, servers_dir=SERVERS_DIR, state_dir=STATE_DIR
    )
    bind = PUBLISH_ADDRESS
    app_hosts = topology.group(inventory, "app")
    migrates = not app_hosts or app_hosts[0].name == host.name
    stacks = {s["name"]: s for s in data.app_stacks}
    outdated = []
    for service in data.apps_services:
        env = app_environment.content(data, inventory, host, stacks[service["stack"]])
        conf = service_conf(data, service, bind, env, migrates, "db" in host.groups)
        config_file(
            name=f"Rollout settings of {service['name']}",
            dest=f"{CONF_DIR}/{service['name']}.conf",
            mode="600",
            content=conf,
        )
        if up_to_date(service, conf, data, containers, live_ports, finished):
            host.noop(f"{service['name']} runs {service['image']}")
            continue
        outdated.append(service)
    if outdated:
        # One app host at a time: while one switches (its nginx reloads, closing the
        # edge's idle connections), the others serve the edge's retries. Two hosts
        # switching at once gave 502s under load in a failover.
        # And none after one failed: a rollout that failed on the first app host is not
        # tried on the next.
        one_host_at_a_time(
            name="Roll out " + ", ".join(f"{s['name']} ({s['image']})" for s in outdated),
            command=rollout_command([s["name"] for s in outdated], data.apps_parallel_rollouts),
            key="apps rollout",
            _serial=True,
        )
