"""What Prometheus scrapes, from the inventory's groups, and the Alertmanagers it
alerts."""

from galion import topology


def _app_metrics_sources(inventory, this) -> list[tuple]:
    """(host, address) of each nginx that serves the apps' metrics to Prometheus on `this`:
    an app host's own (its app proxy, without the edge), or an edge on this very host."""
    edges = {h.name for h in topology.group(inventory, "edge")}
    sources = []
    for h in topology.group(inventory, "app"):
        if h.name not in edges:
            sources.append((h, topology.scrape_address(inventory, this, h)))
        elif h.name == this.name:
            sources.append((h, "127.0.0.1"))
    return sources


def scrape_jobs(inventory, this, probe_path: str, blackbox: str) -> list[dict]:
    """Prometheus' scrape_configs, from the inventory's groups: every host's node
    exporter, the data tier's exporters on `db`, nginx's on `edge`, Docker's engine on
    `app`, the apps' own metrics, Prometheus and Alertmanager themselves, and a blackbox
    probe of every public name (its certificate's expiry comes with it). Each target's
    `instance` is the inventory name of its host (or the URL of a probe)."""

    def job(name: str, groups: tuple | None, port_key: str) -> dict | None:
        hosts = (
            list(inventory)
            if groups is None
            else [h for g in groups for h in topology.group(inventory, g)]
        )
        targets = [
            {
                "targets": [
                    f"{topology.scrape_address(inventory, this, h)}:{h.data.get(port_key)}"
                ],
                "labels": {"instance": h.name},
            }
            for h in hosts
        ]
        return {"job_name": name, "static_configs": targets} if targets else None

    jobs = [
        job("node", None, "node_exporter_port"),
        job("postgres", ("db", "db_replica"), "postgres_exporter_port"),
        job("redis", ("db",), "redis_exporter_port"),
        job("nginx", ("edge",), "nginx_tls_exporter_port"),
    ]
    docker = [
        {"targets": [h.data.get("docker_metrics_address")], "labels": {"instance": h.name}}
        for h in topology.group(inventory, "app")
        # The engine's metrics listen on loopback (a daemon that must bind an address not
        # up yet at boot would not start): read only where Prometheus runs on the host.
        if h.data.get("docker_metrics_address") and h.name == this.name
    ]
    if docker:
        jobs.append({"job_name": "docker", "static_configs": docker})
    # The apps' own /metrics, through an nginx that follows the rollouts: the edge's
    # loopback status listener on the single box (Prometheus on the same host), each app
    # host's own (operations/app_proxy.py) in a fleet.
    apps = [
        {
            "targets": [f"{address}:{h.data.get('nginx_tls_status_port')}"],
            "labels": {
                "instance": h.name,
                "service": upstream,
                "__metrics_path__": f"/apps/{upstream}",
            },
        }
        for h, address in _app_metrics_sources(inventory, this)
        for upstream in h.data.get("nginx_tls_metrics_upstreams") or []
    ]
    if apps:
        jobs.append({"job_name": "apps", "static_configs": apps})
    for name, port_key in (
        ("prometheus", "monitoring_prometheus_port"),
        ("alertmanager", "monitoring_alertmanager_port"),
    ):
        jobs.append(
            {
                "job_name": name,
                "static_configs": [
                    {
                        "targets": [
                            f"{topology.scrape_address(inventory, this, h)}:{h.data.get(port_key)}"
                        ],
                        "labels": {"instance": h.name},
                    }
                    for h in topology.monitoring_hosts(inventory)
                ],
            }
        )
    urls = sorted(
        {
            f"https://{vhost['name']}{probe_path}"
            for h in topology.group(inventory, "edge")
            for vhost in h.data.get("nginx_tls_vhosts") or []
        }
    )
    if urls:
        jobs.append(
            {
                "job_name": "probe",
                "metrics_path": "/probe",
                "params": {"module": ["https_health"]},
                "static_configs": [{"targets": urls}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": blackbox},
                ],
            }
        )
    return [j for j in jobs if j]


def alertmanagers(inventory, this) -> list[str]:
    return [
        topology.scrape_address(inventory, this, h)
        + f":{h.data.get('monitoring_alertmanager_port')}"
        for h in topology.monitoring_hosts(inventory)
    ]
