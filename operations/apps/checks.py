"""Preflight checks of the apps' knobs that look at more than one value (galion/role.py)."""

import re

from galion.validators import Problem

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")


def required_secrets(data) -> list[str]:
    return ["REGISTRY_USER", "REGISTRY_PASSWORD"] if data.get("apps_registry") else []


def _service_ok(s, data) -> bool:
    ports = data.get("nginx_tls_upstream_ports") or {}
    stacks = {st.get("name") for st in data.get("app_env_stacks") or [] if isinstance(st, dict)}
    return (
        isinstance(s, dict)
        and bool(SERVICE_NAME.match(str(s.get("name"))))
        and s.get("name") != "status"  # galion-rollout's verb
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


def check_services(name: str, data, groups) -> list[Problem]:
    services = data.get("apps_services")
    if not isinstance(services, list) or not services:
        return [Problem(name, "apps_services", "is not a list of services", "see its comment")]
    problems = [
        Problem(
            name,
            f"apps_services[{i}]",
            f"{s.get('name') if isinstance(s, dict) else s!r} is not a valid service",
            "name (lowercase, -, not status), upstream in nginx_tls_upstream_ports, stack in "
            "app_env_stacks, image pinned by tag (not latest) or digest, container_port, "
            "memory_mb >= 32, cpus > 0, drain_seconds 0-3600, migrate None or a command",
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
    ports = data.get("nginx_tls_upstream_ports") or {}
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
