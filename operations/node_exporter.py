"""Host metrics on every host: node_exporter from the distro, with the textfile
directory where backups and containers leave their own metrics (galion_*)."""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files

from galion import exporters, topology
from galion.role import Role

KNOBS = {
    # Collectors turned off: none of them is read by the alert rules or dashboards, and
    # each costs series (the plan's Prometheus has 512 MB).
    "node_exporter_disabled_collectors": ["arp", "bcache", "bonding", "infiniband", "ipvs"],
}

ROLE = Role(
    groups=(),
    order=12,
    knob_prefixes=("node_exporter_",),
    checks=(
        (
            "node_exporter_disabled_collectors",
            lambda v: (
                isinstance(v, list) and all(isinstance(c, str) and c.isidentifier() for c in v)
            ),
            "is not a list of collector names",
            'e.g. ["arp", "ipvs"], or []',
        ),
    ),
)


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
            *(f"--no-collector.{c}" for c in data.node_exporter_disabled_collectors),
        ],
    )
