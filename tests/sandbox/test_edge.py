"""Converging the edge again: no certificate re-issued; a bad nginx config never goes live."""

import json

import pytest
import requests

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
    assert len(before) == len(EDGE.data["nginx_tls_vhosts"])
    assert converge().check().changed == []
    assert serials() == before


@pytest.mark.once
def test_bad_nginx_config_fails_the_run_and_keeps_serving():
    live = "/etc/nginx/conf.d/00-galion-http.conf"
    before = EDGE.host.check_output(f"sha256sum {live}")
    master = EDGE.host.check_output("cat /run/nginx.pid")
    # Well-formed for preflight, out of range for nginx: only `nginx -t` can tell.
    result = converge("--data", "nginx_tls_client_max_body_size=99999999999999999999m")
    assert result.returncode != 0 or result.failed_hosts
    assert "[emerg]" in result.stderr and "client_max_body_size" in result.stderr
    assert "validation failed, live file untouched" in result.stderr
    assert EDGE.host.check_output(f"sha256sum {live}") == before
    assert EDGE.host.check_output("cat /run/nginx.pid") == master
    assert EDGE.host.service("nginx").is_running
    assert converge().check().changed == []


@pytest.mark.once
def test_a_certificate_that_cannot_be_issued_yet_does_not_break_the_run(sandbox_state):
    """A name whose DNS does not point at the edge yet: the run succeeds with a warning,
    the edge serves the placeholder for it, and the next run does not retry too soon."""
    name = "not-here-yet.galion.test"
    # The sandbox's DNS answers every name with the edge's address; not this one.
    requests.post(
        f"http://{sandbox_state['gateway']}:8055/add-a",
        json={"host": name, "addresses": ["10.77.0.250"]},
        timeout=10,
    ).raise_for_status()
    vhosts = [
        *EDGE.data["nginx_tls_vhosts"],
        {
            "name": name,
            "aliases": [],
            "upstream": "galion_api",
            "kind": "api",
            "csp": "default-src 'none'",
        },
    ]
    data = ["--data", f"nginx_tls_vhosts={json.dumps(vhosts)}"]
    vhost_file = f"/etc/nginx/conf.d/20-vhost-{name}.conf"
    # What the role keeps of a removed name: its links, its retry clock (for a name added back).
    kept = f"/etc/nginx/tls/{name} /var/lib/galion/acme-failed/{name}"
    try:
        first = converge(*data)
        assert first.returncode == 0 and not first.failed_hosts, first.stderr[-2000:]
        assert f"certificate for {name} not issued" in first.stderr
        subject = EDGE.host.check_output(
            f"echo | openssl s_client -connect 127.0.0.1:443 -servername {name} 2>/dev/null "
            "| openssl x509 -noout -subject"
        )
        assert "placeholder.invalid" in subject
        assert len(serials()) == len(EDGE.data["nginx_tls_vhosts"])  # the others keep theirs
        again = converge(*data)
        assert again.returncode == 0 and not again.failed_hosts
        assert f"certificate for {name} not issued yet: the last attempt failed" in again.stderr
        assert not any(f"Certificate for {name}" in c for c in again.changed)
    except BaseException:
        EDGE.host.run(f"rm -rf {vhost_file} {kept} && systemctl reload nginx")
        raise
    # Out of the data again: the next converge retires its virtual host (the monitoring
    # probes and the request metrics named it too: they are taken back), then nothing.
    restored = converge().check()
    retire = f"Retire nginx files no longer in the data: 20-vhost-{name}.conf on"
    assert any(retire in c for c in restored.changed), restored.changed
    assert not EDGE.host.file(vhost_file).exists
    assert not EDGE.host.file(f"{vhost_file}.galion-retired").exists
    assert name not in EDGE.host.check_output("nginx -T 2>/dev/null | grep server_name")
    nginx_own = ("irtual host", "ertificate")
    assert not any(w in c for c in restored.changed for w in nginx_own), restored
    EDGE.host.run(f"rm -rf {kept}")
    assert converge().check().changed == []


@pytest.mark.once
def test_a_retire_nginx_refuses_puts_the_file_back_and_keeps_serving():
    """A virtual host's file no longer in the data while a hand-made file breaks nginx -t:
    the run fails, the file stays where it was, nginx keeps running its config; once the
    hand-made file is fixed, the next converge retires it and the reload drops it. An
    operator's own file named like ours (no header of the role) is never touched."""
    from operations.nginx_tls.retire import MANAGED

    stale = "/etc/nginx/conf.d/20-vhost-gone.galion.test.conf"
    by_hand = "/etc/nginx/conf.d/20-vhost-by-hand.galion.test.conf"
    broken = "/etc/nginx/conf.d/zz-hand-made.conf"
    EDGE.host.run(
        f"printf '%s\\n' '{MANAGED}: gone.galion.test' "
        "'server { listen 127.0.0.1:8998; server_name gone.galion.test; return 204; }' "
        f"> {stale} && echo 'server {{ listen 127.0.0.1:8997; return 204; }}' > {by_hand} "
        "&& systemctl reload nginx"
    )
    assert EDGE.host.socket("tcp://127.0.0.1:8998").is_listening
    assert EDGE.host.socket("tcp://127.0.0.1:8997").is_listening
    EDGE.host.run(f"echo 'not_a_directive on;' > {broken}")
    master = EDGE.host.check_output("cat /run/nginx.pid")
    try:
        result = converge()
        assert result.returncode != 0 or result.failed_hosts
        assert "put back, nothing reloaded" in result.stderr, result.stderr[-2000:]
        assert EDGE.host.file(stale).exists
        assert not EDGE.host.file(f"{stale}.galion-retired").exists
        assert EDGE.host.check_output("cat /run/nginx.pid") == master
        assert EDGE.host.service("nginx").is_running
        assert EDGE.host.socket("tcp://127.0.0.1:8998").is_listening
    finally:
        EDGE.host.run(f"rm -f {broken}")
    retired = converge().check()
    retire = "Retire nginx files no longer in the data: 20-vhost-gone.galion.test.conf on"
    assert any(retire in c for c in retired.changed), retired.changed
    assert EDGE.host.check_output("ls /etc/nginx/conf.d | grep -c gone || true") == "0"
    assert not EDGE.host.socket("tcp://127.0.0.1:8998").is_listening
    try:
        assert EDGE.host.file(by_hand).exists
        assert EDGE.host.socket("tcp://127.0.0.1:8997").is_listening
        assert converge().check().changed == []
    finally:
        EDGE.host.run(f"rm -f {by_hand} && systemctl reload nginx")
