"""Converging the edge again: no certificate re-issued; a bad nginx config never goes live."""

import pytest

from sandbox.converge import converge
from tests.inventory import in_group

EDGE = in_group("edge")[0] if in_group("edge") else None
pytestmark = pytest.mark.skipif(EDGE is None, reason="no edge host in the inventory")


def serials() -> dict[str, str]:
    out = EDGE.host.check_output(
        "for d in /etc/letsencrypt/live/*/; do printf '%s ' $(basename $d); "
        "openssl x509 -noout -serial -in $d/cert.pem; done"
    )
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_reconverge_issues_no_certificate():
    before = serials()
    assert len(before) == len(EDGE.data["nginx_vhosts"])
    assert converge().check().changed == []
    assert serials() == before


def test_bad_nginx_config_fails_the_run_and_keeps_serving():
    live = "/etc/nginx/conf.d/00-galion-http.conf"
    before = EDGE.host.check_output(f"sha256sum {live}")
    master = EDGE.host.check_output("cat /run/nginx.pid")
    # Well-formed for preflight, out of range for nginx: only `nginx -t` can tell.
    result = converge("--data", "nginx_client_max_body_size=99999999999999999999m")
    assert result.returncode != 0 or result.failed_hosts
    assert "[emerg]" in result.stderr and "client_max_body_size" in result.stderr
    assert "validation failed, live file untouched" in result.stderr
    assert EDGE.host.check_output(f"sha256sum {live}") == before
    assert EDGE.host.check_output("cat /run/nginx.pid") == master
    assert EDGE.host.service("nginx").is_running
    assert converge().check().changed == []
