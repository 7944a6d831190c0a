"""Host metrics on every host: node_exporter from the distro, with the textfile
directory where backups and containers leave their own metrics (galion_*)."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files

from galion import exporters, topology
from galion.ops import crash_restart
from galion.role import Knob, Role

KNOBS = {
    # None of them is read by the alert rules or dashboards, and each costs series in a
    # Prometheus of monitoring_prometheus_memory_mb.
    "node_exporter_disabled_collectors": Knob(
        ["arp", "bcache", "bonding", "infiniband", "ipvs"],
        "Collectors turned off.",
        check=lambda v: (
            isinstance(v, list) and all(isinstance(c, str) and c.isidentifier() for c in v)
        ),
        problem="is not a list of collector names",
        fix="use {default}, or []",
    ),
}

ROLE = Role(groups=(), order=12, knob_prefixes=("node_exporter_",))


@deploy("Host metrics (node_exporter)")
def node_exporter():
    data = host.data
    listen = topology.exporter_bind_address(inventory, host)
    files.directory(
        name="Textfile metrics directory", path=exporters.TEXTFILE_DIR, mode="755", present=True
    )
    exporters.exporter(
        "node exporter",
        "prometheus-node-exporter",
        [
            f"--web.listen-address={listen}:{data.node_exporter_port}",
            f"--collector.textfile.directory={exporters.TEXTFILE_DIR}",
            # The state of the services that restart after a crash: ServiceFailed.
            "--collector.systemd",
            f"--collector.systemd.unit-include={crash_restart.units_pattern()}",
            *(f"--no-collector.{c}" for c in data.node_exporter_disabled_collectors),
        ],
    )
