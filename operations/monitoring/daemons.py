"""Prometheus, Alertmanager and the blackbox exporter from the distro: their packages,
where they listen, their flags files, and a restart or a reload when those change."""

import json

from pyinfra import host, inventory
from pyinfra.operations import apt, server, systemd

from galion import exporters, topology
from galion.facts.apt import AptCandidate
from galion.ops import config_file, restarts_after_crash


def install():
    """The three daemons' packages (and promtool, where the distro splits it out)."""
    # Debian 13 ships promtool in its own package; Debian 12 has it in prometheus.
    promtool = ["promtool"] if host.get_fact(AptCandidate, package="promtool") else []
    return apt.packages(
        name="Install Prometheus, Alertmanager and the blackbox exporter",
        packages=[
            "prometheus",
            "prometheus-alertmanager",
            "prometheus-blackbox-exporter",
            *promtool,
        ],
        no_recommends=True,
        update=True,
        cache_time=3600,
    )


def listen_address() -> str:
    """Prometheus and Alertmanager: loopback unless other monitoring hosts must reach them."""
    return topology.exporter_bind_address(inventory, host)


def yaml_file(value: dict) -> str:
    """YAML the tools read (JSON is YAML), with the managed-by header."""
    return (
        "# Managed by galion-infra (operations/monitoring.py).\n"
        + json.dumps(value, indent=2)
        + "\n"
    )


def flags_file(name: str, package: str, config: str, port: int, *flags: str):
    """The daemon's /etc/default file: its config file, where it listens, other flags."""
    return config_file(
        name=name,
        dest=f"/etc/default/{package}",
        content=exporters.default_file(
            [
                f"--config.file={config}",
                f"--web.listen-address={listen_address()}:{port}",
                *flags,
            ]
        ),
    )


def apply(title: str, unit: str, restart, reload):
    """A restart when its flags or unit changed, else a reload (SIGHUP, no gap in the
    scrapes or the notifications) when its config changed; either way a check that it
    still runs, and running at boot."""
    server.shell(
        name=f"Restart {title} (its flags changed)",
        commands=[exporters.restart_command(unit)],
        _if=restart,
    )
    systemd.service(
        name=f"Reload {title} (its config changed)",
        service=unit,
        reloaded=True,
        _if=lambda: reload() and not restart(),
    )
    server.shell(
        name=f"{title} came back up",
        commands=[exporters.started_check(unit)],
        _if=lambda: reload() or restart(),
    )
    restarts_after_crash(title, f"{unit}.service")
    systemd.service(name=f"{title} runs at boot", service=unit, running=True, enabled=True)
