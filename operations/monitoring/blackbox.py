"""The blackbox exporter's HTTPS health probe of every public name (its certificate's
expiry comes with it), on loopback for the local Prometheus."""

from pyinfra import host

from galion import exporters
from galion.ops import config_file, local_file

from . import daemons

BLACKBOX_YML = "/etc/prometheus/blackbox.yml"
PROBE_CA = "/etc/prometheus/probe-ca.pem"


def blackbox_config(ca_file: str | None) -> dict:
    tls = {"ca_file": ca_file} if ca_file else {}
    return {
        "modules": {
            "https_health": {
                "prober": "http",
                "timeout": "10s",
                "http": {
                    "valid_status_codes": [200],
                    "method": "GET",
                    "fail_if_not_ssl": True,
                    "preferred_ip_protocol": "ip4",
                    "tls_config": tls,
                },
            }
        }
    }


def health_probe():
    data = host.data
    ca = None
    if data.monitoring_probe_ca_bundle:
        local_file(
            name="CAs the probes trust",
            src=data.monitoring_probe_ca_bundle,
            dest=PROBE_CA,
            mode="644",
        )
        ca = PROBE_CA
    conf = config_file(
        name="Blackbox exporter: the HTTPS health probe",
        dest=BLACKBOX_YML,
        content=daemons.yaml_file(blackbox_config(ca)),
        validate="prometheus-blackbox-exporter --config.check --config.file={staged}",
    )
    exporters.exporter(
        "blackbox exporter",
        "prometheus-blackbox-exporter",
        [
            f"--config.file={BLACKBOX_YML}",
            f"--web.listen-address=127.0.0.1:{data.monitoring_blackbox_port}",
        ],
        restart_if=conf.did_change,
    )
