"""Docker engine for the app hosts, from the distro (docker.io), and a firewall it
cannot bypass: published ports are filtered in DOCKER-USER as well as bound to
loopback/private addresses by the apps role."""

import ipaddress
import json

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from galion import exporters
from galion.facts.apt import AptCandidate
from galion.ops import config_file, render, restarts_after_crash, shell_script
from galion.paths import role_files
from galion.role import Knob, Role
from galion.validators import Problem, int_between, is_networks

FILES = role_files("docker")
DAEMON_JSON = "/etc/docker/daemon.json"
UFW_AFTER_INIT = "/etc/ufw/after.init"


def _pools_ok(value) -> bool:
    try:
        return bool(value) and all(
            ipaddress.ip_network(p["base"]).prefixlen < int(p["size"]) <= 28 for p in value
        )
    except (KeyError, TypeError, ValueError):
        return False


KNOBS = {
    # Never the bridge: outside the private network and docker_bridge_address.
    "docker_address_pools": Knob(
        [{"base": "172.20.0.0/16", "size": 24}],
        "Address pools of networks created with `docker network create`.",
        check=_pools_ok,
        problem="is not a list of {base: CIDR, size: prefix length <= 28}",
    ),
    "docker_log_max_size": Knob(
        "10m",
        "Container logs: json-file, rotated at this size, this many files per container.",
        check=lambda v: isinstance(v, str) and v[:-1].isdigit() and v[-1] in "kmg",
        problem="is not a size like 10m",
    ),
    "docker_log_max_files": Knob(
        3,
        "Rotated log files kept per container.",
        check=int_between(1, 100),
        problem="is not a count of files",
    ),
    "docker_metrics_address": Knob(
        "127.0.0.1:9323",
        "Engine metrics (Prometheus format) on loopback only; the monitoring role scrapes it.",
    ),
    # The load balancer's private address in a fleet.
    "docker_published_port_sources": Knob(
        [],
        "Sources (CIDRs) allowed to open connections to published container ports from other "
        "hosts; empty: only this host.",
        check=is_networks,
        problem="is not a list of CIDRs",
        fix='e.g. ["10.0.0.1/32"] for the load balancer, or {default}',
    ),
}


def _check_overlaps(name: str, data, groups) -> list[Problem]:
    """The bridge and the pools may not overlap each other, the private network or the
    operator's trusted addresses: containers would shadow real hosts."""
    try:
        bridge = ipaddress.ip_interface(data.get("docker_bridge_address")).network
        pools = [ipaddress.ip_network(p["base"]) for p in data.get("docker_address_pools")]
    except (KeyError, TypeError, ValueError):
        return []  # the shape checks name the key
    others = [("docker_bridge_address", bridge)] + [("docker_address_pools", p) for p in pools]
    for key in ("private_address", "ssh_hostname"):
        try:
            others.append((key, ipaddress.ip_network(data.get(key))))
        except (TypeError, ValueError):
            pass
    for cidr in data.get("base_ssh_trusted_cidrs") or []:
        try:
            others.append(("base_ssh_trusted_cidrs", ipaddress.ip_network(cidr, strict=False)))
        except (TypeError, ValueError):
            pass  # base's check names it
    problems = []
    for i, (key_a, a) in enumerate(others):
        for key_b, b in others[i + 1 :]:
            docker_range = key_a.startswith("docker_") or key_b.startswith("docker_")
            if docker_range and key_a != key_b and a.version == b.version and a.overlaps(b):
                problems.append(
                    Problem(
                        name,
                        f"{key_a}/{key_b}",
                        f"{a} overlaps {b}",
                        "move the Docker ranges to a private range nothing else uses",
                    )
                )
    return problems


ROLE = Role(
    groups=("app",),
    # After the data tier (its binds on the bridge address come first), before the apps.
    order=45,
    knob_prefixes=("docker_",),
    check_host=_check_overlaps,
)


def daemon_settings(data) -> dict:
    """/etc/docker/daemon.json, as a dict (keys Docker 20.10 to 28 all know)."""
    return {
        "bip": data.docker_bridge_address,
        "default-address-pools": data.docker_address_pools,
        "log-driver": "json-file",
        "log-opts": {
            "max-size": data.docker_log_max_size,
            "max-file": str(data.docker_log_max_files),
        },
        # Restarting the engine (an upgrade, a daemon.json change) keeps containers running.
        "live-restore": True,
        "metrics-addr": data.docker_metrics_address,
        # Docker 20.10 serves metrics only with experimental on; later versions ignore it.
        "experimental": True,
        "no-new-privileges": True,
        # Published ports by NAT rules in the kernel, not by a docker-proxy process per
        # port copying every byte between nginx and the app: on two cores that process
        # took ~40 % of a core under load, and nginx through it served 0.6-0.75x as much.
        "userland-proxy": False,
    }


def docker_user_rules(data) -> list[str]:
    """DOCKER-USER: the chain Docker consults first for traffic forwarded to containers.
    Containers' own traffic and replies pass; new connections from outside reach a
    published port only from the listed sources; everything else is dropped, whatever a
    container publishes (a hand-started `-p 8080:80` included)."""
    lines = [
        "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-A DOCKER-USER -i docker0 -j RETURN",
        "-A DOCKER-USER -i br-+ -j RETURN",
    ]
    lines += [f"-A DOCKER-USER -s {cidr} -j RETURN" for cidr in data.docker_published_port_sources]
    # Only traffic to containers: other forwarded traffic (a VPN, a router) is not ours.
    lines += ["-A DOCKER-USER -o docker0 -j DROP", "-A DOCKER-USER -o br-+ -j DROP"]
    return lines


@deploy("Docker engine")
def docker():
    data = host.data
    # Before the engine first starts: its bridge and log settings apply from the start.
    files.directory(name="Docker's config directory", path="/etc/docker", mode="755")
    daemon = config_file(
        name="Docker daemon: bridge, address pools, log rotation, live-restore, metrics",
        dest=DAEMON_JSON,
        content=json.dumps(daemon_settings(data), indent=2, sort_keys=True) + "\n",
        validate=(
            "if dockerd --help 2>/dev/null | grep -q -- --validate; "
            "then dockerd --validate --config-file {staged}; "
            "else python3 -m json.tool {staged} >/dev/null; fi"
        ),
    )
    # Before the engine first starts, so that every start of it runs the re-arm.
    rearm = [
        shell_script(FILES / "galion-docker-health-rearm"),
        config_file(
            name="Docker re-arms live-restored containers' health checks after each start",
            dest="/etc/systemd/system/docker.service.d/galion-health-rearm.conf",
            content=(FILES / "galion-health-rearm.conf").read_text(),
        ),
    ]
    systemd.daemon_reload(name="systemd reads docker.service's drop-in", _if=any_changed(*rearm))
    firewall = config_file(
        name="UFW filters what reaches containers (DOCKER-USER, after.init)",
        dest=UFW_AFTER_INIT,
        mode="750",
        content=render("docker/etc/ufw/after.init.j2", rules=docker_user_rules(data)),
        validate="sh -n {staged}",
    )
    server.shell(
        name="Load the DOCKER-USER rules if they changed",
        commands=[f"{UFW_AFTER_INIT} start"],
        _if=firewall.did_change,
    )
    # Debian 13 ships the client apart (docker-cli); Debian 12 and Ubuntu keep it in docker.io.
    cli = ["docker-cli"] if host.get_fact(AptCandidate, package="docker-cli") else []
    installed = apt.packages(
        name="Install Docker (docker.io from the distro)" + (" and docker-cli" if cli else ""),
        packages=["docker.io", *cli],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    server.shell(
        name="Restart Docker if daemon.json changed (containers keep running)",
        commands=["systemctl restart docker"],
        _if=lambda: daemon.did_change() and not installed.did_change(),
    )
    # Live restore keeps the containers running while the engine is down.
    restarts_after_crash("Docker", "docker.service")
    systemd.service(name="Docker enabled and running", service="docker", running=True, enabled=True)
    _container_metrics()


def _container_metrics():
    """Restarts, memory against the limit and health of the app containers, as textfile
    metrics for node_exporter (Debian ships no cAdvisor)."""
    exporters.textfile_collector("galion-container-metrics", FILES)
