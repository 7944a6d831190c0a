"""Redis for the apps: loopback/private only, ACL users from secrets, AOF + RDB, THP off."""

import hashlib

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import secrets
from galion.facts import ContainerVirtualization
from galion.ops import config_file, render
from operations.postgres import client_hosts, private_address

INCLUDE = "include /etc/redis/galion.conf"
# A config is valid if a scratch redis-server started with it is still up after 2 s
# (a bad directive or ACL line makes it exit at once). It listens on no port and
# keeps its files in a scratch directory.
SCRATCH_START = (
    "d=$(mktemp -d) && grep -vxF '" + INCLUDE + "' /etc/redis/redis.conf > $d/main.conf && "
    "{include} && chown -R redis: $d && "
    "timeout 2 runuser -u redis -- redis-server $d/main.conf --port 0 --unixsocket $d/sock "
    "--dir $d --pidfile $d/pid --logfile $d/log --daemonize no --supervised no {extra}; "
    "r=$?; [ $r = 124 ] || cat $d/log >&2; rm -rf $d; [ $r = 124 ]"
)


def required_secrets(data) -> list[str]:
    return ["REDIS_APP_PASSWORD", "REDIS_ADMIN_PASSWORD"]


def bind_addresses() -> list[str]:
    return ["127.0.0.1", "-::1"] + ([private_address(host)] if client_hosts() else [])


@deploy("Redis")
def redis():
    data = host.data
    apt.packages(name="Install Redis", packages=["redis-server"], update=True, cache_time=3600,
                 no_recommends=True)
    thp = config_file(name="Unit that turns transparent huge pages off",
                      dest="/etc/systemd/system/galion-disable-thp.service",
                      content=render("redis/etc/systemd/galion-disable-thp.service.j2"))
    systemd.daemon_reload(name="systemd reads the THP unit", _if=thp.did_change)
    # In a container the unit's condition skips it: "inactive" there is the wanted state.
    in_container = host.get_fact(ContainerVirtualization) != "none"
    systemd.service(name="THP off at boot (skipped in containers)",
                    service="galion-disable-thp.service", enabled=True,
                    running=None if in_container else True)
    acl = config_file(
        name="Redis ACL users (secret)", dest="/etc/redis/users.acl", user="redis",
        group="redis", mode="600", secret=True,
        content=render("redis/etc/redis/users.acl.j2",
                       app_user=data.redis_app_user, admin_user=data.redis_admin_user,
                       app_hash=hashlib.sha256(secrets.get("REDIS_APP_PASSWORD").encode()).hexdigest(),
                       admin_hash=hashlib.sha256(secrets.get("REDIS_ADMIN_PASSWORD").encode()).hexdigest()),
        validate=SCRATCH_START.format(include="true", extra="--aclfile {staged}"))
    conf = config_file(
        name="Redis settings (validated by a scratch start)", dest="/etc/redis/galion.conf",
        user="redis", group="redis", mode="640",
        content=render("redis/etc/redis/galion.conf.j2", bind=bind_addresses(),
                       port=data.redis_port, maxmemory_mb=data.redis_maxmemory_mb,
                       maxmemory_policy=data.redis_maxmemory_policy),
        validate=SCRATCH_START.format(include="echo 'include {staged}' >> $d/main.conf",
                                      extra=""))
    include = files.line(name="redis.conf includes galion.conf last", path="/etc/redis/redis.conf",
                         line=INCLUDE, present=True)
    server.shell(name="Restart Redis if its config changed",
                 commands=["systemctl restart redis-server"], _if=any_changed(acl, conf, include))
    systemd.service(name="Redis enabled and running", service="redis-server", running=True,
                    enabled=True)
