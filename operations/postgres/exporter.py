"""postgres_exporter, logged in as the monitoring role (pg_monitor) over loopback."""

import urllib.parse

from pyinfra import host, inventory

from galion import exporters, secrets, topology


def exporter():
    data = host.data
    password = urllib.parse.quote(secrets.get("POSTGRES_MONITORING_PASSWORD"), safe="")
    listen = topology.exporter_bind_address(inventory, host)
    exporters.exporter(
        "PostgreSQL exporter",
        "prometheus-postgres-exporter",
        [f"--web.listen-address={listen}:{data.postgres_exporter_port}"],
        environment={
            "DATA_SOURCE_NAME": f"postgresql://{data.postgres_monitoring_role}:{password}"
            f"@127.0.0.1:{data.postgres_port}/postgres?sslmode=disable"
        },
        secret=True,
    )
