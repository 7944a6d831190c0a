"""Preflight's checks of the edge that read several keys at once, or the inventory."""

from galion.validators import Problem, is_address_or_name, needs_group, run_checks

VHOST_KINDS = ("frontend", "api", "websocket")


def _vhosts_ok(data):
    ports = data.get("nginx_tls_upstream_ports") or {}
    return lambda v: (
        isinstance(v, list)
        and bool(v)
        and all(
            isinstance(x, dict)
            and is_address_or_name(x.get("name"))
            and all(is_address_or_name(a) for a in x.get("aliases", []))
            and x.get("kind") in VHOST_KINDS
            and x.get("upstream") in ports
            and isinstance(x.get("csp"), str)
            and '"' not in x.get("csp")
            for x in v
        )
    )


def check_vhosts(name: str, data, groups) -> list[Problem]:
    """The vhosts and the metrics upstreams against the upstream map (checks of two
    keys together)."""
    ports = data.get("nginx_tls_upstream_ports") or {}
    return run_checks(
        name,
        data,
        [
            (
                "nginx_tls_vhosts",
                _vhosts_ok(data),
                "is not a list of {name, aliases, upstream, kind, csp} with known upstreams",
                f"kind is one of {', '.join(VHOST_KINDS)}; "
                "upstream a key of nginx_tls_upstream_ports",
            ),
            (
                "nginx_tls_metrics_upstreams",
                lambda v: isinstance(v, list) and all(u in ports for u in v),
                "is not a list of upstreams of nginx_tls_upstream_ports",
                'e.g. ["galion_api"], or [] if no app serves metrics',
            ),
        ],
    )


def check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    return needs_group(
        hosts, "edge", "app", "has nothing to proxy to", "put at least one host in group app"
    )
