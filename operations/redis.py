"""Redis for the apps: loopback/private only, ACL users from secrets, AOF + RDB, THP off."""

import hashlib
import re
import shlex

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import exporters, secrets, topology
from galion.facts.system import in_container
from galion.ops import config_file, render, restarts_after_crash
from galion.role import Knob, Role
from galion.validators import Problem, int_between

POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)

KNOBS = {
    # 2 GB of the 16 GB box.
    "redis_maxmemory_mb": Knob(
        2048,
        "Memory for data, in MB.",
        check=int_between(16, 4_000_000),
        problem="is not a size in MB",
    ),
    # Keys without a TTL are never dropped silently: writes fail instead.
    "redis_maxmemory_policy": Knob(
        "volatile-lru",
        "What goes when full: only keys with a TTL (caches, sessions).",
        check=lambda v: v in POLICIES,
        problem="is not a Redis eviction policy",
        fix=f"use one of {', '.join(POLICIES)}",
    ),
    "redis_admin_user": Knob("admin", "ACL user for operators (all commands)."),
    "redis_exporter_user": Knob(
        "metrics",
        "ACL user of the Redis exporter: server statistics only, no key, no write.",
        check=lambda v: isinstance(v, str) and re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", v),
        problem="is not a Redis user name",
    ),
}


def required_secrets(data) -> list[str]:
    return ["REDIS_APP_PASSWORD", "REDIS_ADMIN_PASSWORD"]


def _check_host(name: str, data, groups) -> list[Problem]:
    users = [data.get(k) for k in ("redis_app_user", "redis_admin_user", "redis_exporter_user")]
    if len(set(users)) < len(users):
        return [
            Problem(
                name,
                "redis_exporter_user",
                "shares its name with another Redis user: one ACL line would override the other",
                "give the apps, the operators and the exporter a user each",
            )
        ]
    return []


ROLE = Role(
    groups=("db",),
    order=30,
    knob_prefixes=("redis_",),
    required_secrets=required_secrets,
    check_host=_check_host,
)

INCLUDE = "include /etc/redis/galion.conf"


def exporter_password() -> str:
    # Only the exporter on this host logs in with it: derived, not one more .env key.
    return secrets.derived("REDIS_ADMIN_PASSWORD", "redis-exporter")


def scratch_start_command(include: str, extra: str) -> str:
    """A config is valid if a scratch redis-server started with it is still up after 2 s
    (a bad directive or ACL line makes it exit at once). It listens on no port and keeps
    its files in a scratch directory. `include` adds the staged file to the scratch main
    config; `extra` adds arguments."""
    return (
        "d=$(mktemp -d -p /tmp) && grep -vxF '"
        + INCLUDE
        + "' /etc/redis/redis.conf > $d/main.conf && "
        + include
        + " && chown -R redis: $d && "
        "timeout 2 runuser -u redis -- redis-server $d/main.conf --port 0 --unixsocket $d/sock "
        "--dir $d --pidfile $d/pid --logfile $d/log --daemonize no --supervised no "
        + extra
        + "; r=$?; [ $r = 124 ] || cat $d/log >&2; rm -rf $d; [ $r = 124 ]"
    )


def bind_check_command(addresses: list[str]) -> str:
    """The scratch start listens on no port, so it cannot prove the binds: each address
    Redis must bind is on the host, or the kernel binds addresses it does not have
    (ip_nonlocal_bind). A leading `-` makes an address optional to Redis: skipped.
    Plain sh: config_file validates with `sh -c`."""
    required = " ".join(shlex.quote(a) for a in addresses if not a.startswith("-"))
    on_host = '\'{sub("/.*", "", $4)} $4 == a {f = 1} END {exit !f}\''
    return (
        f'set -- {required}; for a in "$@"; do case $a in *:*) v=6 ;; *) v=4 ;; esac; '
        f'ip -o addr show | awk -v a="$a" {on_host} '
        '|| [ "$(sysctl -n net.ipv$v.ip_nonlocal_bind 2>/dev/null)" = 1 ] '
        '|| { echo "redis: bind address $a is not on this host'
        ' (and net.ipv$v.ip_nonlocal_bind is not 1)" >&2; exit 1; }; done'
    )


def bind_addresses() -> list[str]:
    gateway = topology.local_data_tier_for_containers(inventory, host)
    return (
        ["127.0.0.1", "-::1"]
        + topology.data_tier_bind_addresses(inventory, host)
        + ([gateway] if gateway else [])
    )


@deploy("Redis")
def redis():
    data = host.data
    apt.packages(
        name="Install Redis",
        packages=["redis-server"],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    thp = config_file(
        name="Unit that turns transparent huge pages off",
        dest="/etc/systemd/system/galion-disable-thp.service",
        content=render("redis/etc/systemd/galion-disable-thp.service.j2"),
    )
    systemd.daemon_reload(name="systemd reads the THP unit", _if=thp.did_change)
    # In a container the unit's condition skips it: "inactive" there is the wanted state.
    systemd.service(
        name="THP off at boot (skipped in containers)",
        service="galion-disable-thp.service",
        enabled=True,
        running=None if in_container() else True,
    )
    acl = config_file(
        name="Redis ACL users (secret)",
        dest="/etc/redis/users.acl",
        user="redis",
        group="redis",
        mode="600",
        secret=True,
        content=render(
            "redis/etc/redis/users.acl.j2",
            app_user=data.redis_app_user,
            admin_user=data.redis_admin_user,
            app_hash=hashlib.sha256(secrets.get("REDIS_APP_PASSWORD").encode()).hexdigest(),
            admin_hash=hashlib.sha256(secrets.get("REDIS_ADMIN_PASSWORD").encode()).hexdigest(),
            exporter_user=data.redis_exporter_user,
            exporter_hash=hashlib.sha256(exporter_password().encode()).hexdigest(),
        ),
        validate=scratch_start_command(include="true", extra="--aclfile {staged}"),
    )
    bind = bind_addresses()
    conf = config_file(
        name="Redis settings (binds checked, validated by a scratch start)",
        dest="/etc/redis/galion.conf",
        user="redis",
        group="redis",
        mode="640",
        content=render(
            "redis/etc/redis/galion.conf.j2",
            bind=bind,
            port=data.redis_port,
            maxmemory_mb=data.redis_maxmemory_mb,
            maxmemory_policy=data.redis_maxmemory_policy,
        ),
        validate=bind_check_command(bind)
        + "; "
        + scratch_start_command(include="echo 'include {staged}' >> $d/main.conf", extra=""),
    )
    include = files.line(
        name="redis.conf includes galion.conf last",
        path="/etc/redis/redis.conf",
        line=INCLUDE,
        present=True,
    )
    server.shell(
        name="Restart Redis if its config changed",
        commands=["systemctl restart redis-server"],
        _if=any_changed(acl, conf, include),
    )
    restarts_after_crash("Redis", "redis-server.service")
    systemd.service(
        name="Redis enabled and running", service="redis-server", running=True, enabled=True
    )
    listen = topology.exporter_bind_address(inventory, host)
    exporters.exporter(
        "Redis exporter",
        "prometheus-redis-exporter",
        [f"--web.listen-address={listen}:{data.redis_exporter_port}"],
        environment={
            "REDIS_ADDR": f"redis://127.0.0.1:{data.redis_port}",
            "REDIS_USER": data.redis_exporter_user,
            "REDIS_PASSWORD": exporter_password(),
        },
        secret=True,
    )
