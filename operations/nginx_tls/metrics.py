"""What monitoring reads of the edge: responses and durations per public name from the
access log, and nginx's stub_status through the nginx exporter."""

from pyinfra import host, inventory

from galion import exporters, topology
from galion.ops import render
from galion.paths import role_files

FILES = role_files("nginx_tls")


# stub_status, on loopback only: read by the nginx exporter on the same host.
def stub_status_url() -> str:
    return f"http://127.0.0.1:{host.data.nginx_tls_status_port}/nginx_status"


def request_metrics(vhosts: list[dict]):
    """Responses by status class and request durations per public name, from the access
    log (stub_status has neither): the error-rate and latency alerts read them."""
    names = sorted({name for v in vhosts for name in [v["name"], *v.get("aliases", [])]})
    exporters.textfile_collector(
        "galion-nginx-metrics",
        FILES,
        service=render(
            "nginx_tls/etc/systemd/system/galion-nginx-metrics.service.j2",
            textfile_dir=exporters.TEXTFILE_DIR,
            names=names,
        ),
    )


def exporter():
    listen = topology.exporter_bind_address(inventory, host)
    exporters.exporter(
        "nginx exporter",
        "prometheus-nginx-exporter",
        [
            f"--nginx.scrape-uri={stub_status_url()}",
            f"--web.listen-address={listen}:{host.data.nginx_tls_exporter_port}",
        ],
    )
