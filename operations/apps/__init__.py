"""The apps' containers: one per service from data (pinned image, environment from its
stack's secret file, memory and CPU limits, log limits), published on loopback (or the
private address in a fleet) and updated with no failed request by galion-rollout
(files/apps/galion-rollout): the new container beside the old, health gate, nginx
switch, a watch window with automatic rollback, then the old one drains.

Containers run with plain `docker run` and Docker's restart policy, as Kamal does: the
same commands on Docker 20.10 (Debian 12, no Compose v2), 26 (Debian 13) and Ubuntu's.

One concern per module of this package; `apps()` below runs them in this order:
memory.py (the memory plan), images.py (registry login, image archives), settings.py
(each service's rollout settings), rollout.py (which services galion-rollout updates:
it decides, the converge asks)."""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files

from galion.facts.system import MemoryTotalMb
from galion.ops import shell_script
from galion.paths import role_files
from galion.role import Knob, Role
from galion.validators import int_between, matches

from . import checks, images, memory, rollout, settings

FILES = role_files("apps")


@deploy("App services")
def apps():
    data = host.data
    memory.check_memory_plan(
        memory.memory_plan(data, host.groups), host.get_fact(MemoryTotalMb), host.name
    )
    apt.packages(name="curl for the health checks", packages=["curl"], no_recommends=True)
    script = FILES / "galion-rollout"
    shell_script(script, title="galion-rollout (zero-downtime update with rollback)")
    files.directory(
        name="Directory of the services' rollout settings", path=settings.CONF_DIR, mode="700"
    )
    images.registry_login()
    images.image_archives(data.apps_services)
    wanted = settings.wanted(data)
    settings.write(wanted)
    rollout.roll_out(data, wanted, script)


KNOBS = {
    # Each service: name, the nginx upstream it serves, stack (app_env_stacks entry whose
    # environment file it reads), image pinned by tag or digest, container_port (where
    # the image listens; it also gets PORT), memory_mb and cpus (limits), drain_seconds
    # (how long the old container keeps its open connections after cutover: longer for
    # WebSockets), migrate (a command run as `/bin/sh -c` in the new image, its
    # ENTRYPOINT bypassed, before cutover when the image changes, on the first app host
    # only, or None; it must leave a schema the previous image still works with, since a
    # rollback after cutover runs the previous image on the migrated schema), and
    # optionally image_archive (a `docker save` file on the operator's machine, loaded
    # when the host lacks the image: hosts without a registry).
    "apps_services": Knob(
        [
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
        "The apps' services, one dict each (keys: the comment above); the ports they "
        "publish are nginx_tls_upstream_ports[upstream].",
    ),
    # Private registry host to log in to (e.g. ghcr.io) with the REGISTRY_USER and
    # REGISTRY_PASSWORD secrets; None: public images or images loaded from archives.
    "apps_registry": Knob(
        None,
        "Private registry host to log in to (e.g. ghcr.io) with the REGISTRY_USER and "
        "REGISTRY_PASSWORD secrets; None: public images or images loaded from archives.",
        check=lambda v: v is None or checks.IMAGE.match(str(v)),
        problem="is not a host",
        fix="ghcr.io",
    ),
    "apps_health_path": Knob(
        "/health",
        "HTTP path every service answers 200 on when it is ready.",
        check=matches(re.compile(r"^/[A-Za-z0-9._/-]*$")),
        problem="is not a path",
        fix="/health",
    ),
    # Each run starts a process in the container: 10 s keeps an idle box's background
    # work to about a tenth of two cores (2 s took a third: bench/RESULTS.md, edge).
    "apps_health_check_interval_seconds": Knob(
        10,
        "Seconds between Docker's runs of each image's HEALTHCHECK (`--health-interval`); "
        "None keeps the image's own.",
        check=lambda v: v is None or int_between(1, 3600)(v),
        problem="is not 1-3600 s or None",
    ),
    "apps_health_timeout_seconds": Knob(
        60,
        "Seconds a new container has to turn healthy before it is removed and the run fails.",
        check=int_between(5, 3600),
        problem="is not 5-3600 s",
    ),
    "apps_watch_seconds": Knob(
        30,
        "Seconds the new version is watched after cutover (health, 5xx rate) before the old "
        "container drains; a failure in the window switches back to the old one.",
        check=int_between(0, 3600),
        problem="is not 0-3600 s",
    ),
    "apps_rollback_error_percent": Knob(
        5,
        "Rollback when more than this percentage of requests answer 5xx in the window...",
        check=int_between(0, 100),
        problem="is not a percentage",
    ),
    "apps_rollback_min_requests": Knob(
        20,
        "...counted once at least this many requests went to the new container.",
        check=int_between(1, 10**6),
        problem="is not a count",
    ),
    "apps_alternate_port_offset": Knob(
        10000,
        "Each service runs on its usual port or on that port + this offset during an update.",
        check=int_between(1, 60000),
        problem="is not a port offset",
        fix="{default}",
    ),
    "apps_backup_before_migrate": Knob(
        True,
        "Back up the database (pgBackRest, incremental) before a migration runs, on a host "
        "that also runs the database (a fleet's app hosts rely on the db host's schedule).",
        check=lambda v: isinstance(v, bool),
        problem="is not a bool",
        fix="{default}",
    ),
    "apps_migrate_timeout_seconds": Knob(
        600,
        "Seconds a migration may run before it is stopped and the rollout fails.",
        check=int_between(10, 86400),
        problem="is not 10-86400 s",
        fix="{default}",
    ),
    "apps_parallel_rollouts": Knob(
        1,
        "Services updated at once. During its update a service runs two containers, so each "
        "one beyond the first adds its memory_mb to the memory plan; 1 uses the OS reserve.",
        check=int_between(1, 64),
        problem="is not a count 1-64",
    ),
    "apps_os_reserve_mb": Knob(
        1536,
        "Memory kept for the OS, nginx and the page cache when checking the memory plan.",
        check=int_between(256, 10**7),
        problem="is not MB",
    ),
    # Above the data tier's 0 (PostgreSQL's postmaster: -900, Debian's unit): when the
    # memory plan is wrong the kernel kills an app container, which Docker restarts, and
    # the database, PgBouncer and Redis keep their state.
    "apps_oom_score_adjust": Knob(
        500,
        "The containers' OOM score adjustment (`--oom-score-adj`, 0-1000): the OOM killer "
        "takes an app container before the data tier.",
        check=int_between(0, 1000),
        problem="is not 0-1000",
    ),
}


ROLE = Role(
    groups=("app",),
    # After the edge and the app proxy: a rollout switches the nginx upstreams they made.
    order=70,
    knob_prefixes=("apps_",),
    required_secrets=checks.required_secrets,
    check_host=checks.check_services,
)
