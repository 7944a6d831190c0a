"""The edge, checked from outside like a browser would (operations/nginx_tls/).

Requests go from the workstation (and the probe namespace) to the edge host's address,
with the public names resolved there, as DNS would in production.
"""

import base64
import http.client
import json
import socket
import ssl
import time

import pytest
import requests

GROUP = "edge"
REQUIRED_HEADERS = (
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "content-security-policy",
)


@pytest.fixture(scope="module")
def backend():
    """The app tier's containers (the sandbox's test image) answer on every upstream port."""
    from tests.inventory import in_group

    app = in_group("app")[0]
    for port in app.data["nginx_tls_upstream_ports"].values():
        code = app.host.check_output(
            f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/health || true"
        )
        if code != "200":
            # After an update the service may run on its alternate port.
            alt = port + app.data["apps_alternate_port_offset"]
            code = app.host.check_output(
                f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{alt}/health || true"
            )
        assert code == "200", f"no app container answers on {port}"


@pytest.fixture(scope="module")
def acme_root(tmp_path_factory):
    from sandbox import state

    s = state.load()
    if "acme" not in s:
        pytest.skip("no sandbox ACME server")
    pem = requests.get(s["acme"]["roots"], verify=s["ca_file"], timeout=10).text
    path = tmp_path_factory.mktemp("acme") / "root.pem"
    path.write_text(pem)
    return str(path)


def tls(node, name: str, ca: str | None = None, version: ssl.TLSVersion | None = None):
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    if version:
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    sock = socket.create_connection((node.address, 443), timeout=5)
    return ctx.wrap_socket(sock, server_hostname=name)


def get(node, name: str, path: str = "/", headers: dict | None = None, ca: str | None = None):
    conn = http.client.HTTPSConnection(
        node.address,
        443,
        timeout=10,
        context=ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context(),
    )
    conn.sock = tls(node, name, ca)
    conn.request("GET", path, headers={"Host": name, **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def vhost(node, kind: str) -> dict:
    return next(v for v in node.data["nginx_tls_vhosts"] if v["kind"] == kind)


def await_in_access_log(node, path: str, sent: float) -> None:
    """access.log is buffered (nginx_tls_access_log_flush_seconds): a request sent at `sent`
    (time.monotonic()) must be in it within that time, plus 2 s of slack."""
    flush = node.data["nginx_tls_access_log_flush_seconds"]
    log = node.host.file("/var/log/nginx/access.log")
    while path not in log.content_string:
        assert time.monotonic() - sent < flush + 2, f"{path} not in access.log"
        time.sleep(0.1)


def test_certificate_issued_by_the_acme_server_verifies(node, acme_root):
    for v in node.data["nginx_tls_vhosts"]:
        with tls(node, v["name"], ca=acme_root) as s:  # verification + hostname check
            names = [n for kind, n in s.getpeercert()["subjectAltName"] if kind == "DNS"]
            assert sorted(names) == sorted([v["name"], *v["aliases"]])


def test_http_redirects_to_https_but_not_acme_challenges(node):
    name = vhost(node, "api")["name"]
    conn = http.client.HTTPConnection(node.address, 80, timeout=5)
    conn.request("GET", "/some/path?q=1", headers={"Host": name})
    r = conn.getresponse()
    r.read()
    assert r.status == 301 and r.getheader("Location") == f"https://{name}/some/path?q=1"
    conn.request("GET", "/.well-known/acme-challenge/nope", headers={"Host": name})
    r2 = conn.getresponse()
    r2.read()
    assert r2.status == 404


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_refused(node, version):
    with pytest.raises(ssl.SSLError) as err:
        tls(node, vhost(node, "api")["name"], version=version).close()
    assert "PROTOCOL_VERSION" in str(err.value).upper() or "UNSUPPORTED" in str(err.value).upper()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_current_tls_versions_accepted(node, version):
    with tls(node, vhost(node, "api")["name"], version=version) as s:
        assert s.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


def test_headers_on_200_and_404(node, backend):
    for v in node.data["nginx_tls_vhosts"]:
        ok = get(node, v["name"], "/")
        missing = get(node, v["name"], "/missing")
        assert (ok.status, missing.status) == (200, 404), v["name"]
        for r in (ok, missing):
            for header in REQUIRED_HEADERS:
                assert r.getheader(header), (v["name"], r.status, header)
            assert r.getheader("content-security-policy") == v["csp"]
            assert "max-age=63072000; includeSubDomains" == r.getheader("strict-transport-security")
            assert "nginx/" not in (r.getheader("server") or "")


def test_api_cache_hits_and_is_bypassed_with_credentials(node, backend):
    name = vhost(node, "api")["name"]
    path = f"/cacheable-{time.time_ns()}"
    assert get(node, name, path).getheader("x-cache-status") == "MISS"
    assert get(node, name, path).getheader("x-cache-status") == "HIT"
    assert (
        get(node, name, path, {"Authorization": "Bearer x"}).getheader("x-cache-status") == "BYPASS"
    )
    assert get(node, name, path, {"Cookie": "session=x"}).getheader("x-cache-status") == "BYPASS"


def test_websocket_upgrades_through_to_the_backend(node, backend):
    name = vhost(node, "websocket")["name"]
    with tls(node, name) as s:
        key = base64.b64encode(b"0123456789abcdef").decode()
        s.sendall(
            (
                f"GET /socket HTTP/1.1\r\nHost: {name}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = s.recv(4096).decode()
        assert head.startswith("HTTP/1.1 101"), head
        s.sendall(b"hello through nginx")
        assert s.recv(4096) == b"hello through nginx"


PROBE_CLIENT = """
import http.client, json, ssl, sys, time
src, addr, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
path = sys.argv[5] if len(sys.argv) > 5 else "/rate"
statuses, last = [], {}
started = time.monotonic()
for _ in range(count):
    c = http.client.HTTPSConnection(addr, 443, timeout=10, source_address=(src, 0),
                                    context=ssl._create_unverified_context())
    c.request("GET", path, headers={"Host": name})
    r = c.getresponse(); r.read()
    statuses.append(r.status)
    if r.status == 429:
        last = {k.lower(): v for k, v in r.getheaders()}
    c.close()
print(json.dumps({"statuses": statuses, "headers_429": last,
                  "seconds": time.monotonic() - started}))
"""


def banned_within(node, jail: str, source: str, seconds: int) -> bool:
    """fail2ban polls its logs: wait up to `seconds` for `jail` to ban `source`."""
    for _ in range(seconds):
        if source in node.host.check_output(f"fail2ban-client status {jail}"):
            return True
        time.sleep(1)
    return False


def test_api_rate_limit_answers_429_with_headers_and_bans_floods(node, probe, backend):
    source = probe.extra[2]
    name = vhost(node, "api")["name"]
    burst = node.data["nginx_tls_rate_api_burst"]
    out = probe.run("python3", "-c", PROBE_CLIENT, source, node.address, name, str(burst + 25))
    result = json.loads(out.stdout)
    statuses = result["statuses"]
    try:
        assert statuses[0] == 200
        assert 429 in statuses and 503 not in statuses, statuses
        # The burst, plus what the rate refilled while the flood lasted (a slow machine
        # sends it slower), plus one.
        refilled = int(result["seconds"] * node.data["nginx_tls_rate_api_per_minute"] / 60)
        assert statuses.count(200) <= burst + 2 + refilled, (statuses, result["seconds"])
        for header in REQUIRED_HEADERS:
            assert result["headers_429"].get(header), header
        # fail2ban's nginx-limit-req jail reads nginx's error log and bans the flood.
        assert banned_within(node, "nginx-limit-req", source, seconds=30)
    finally:
        node.host.run(f"fail2ban-client set nginx-limit-req unbanip {source}")


def test_static_assets_are_never_refused_nor_banned(node, probe, backend):
    """A page load fetches dozens of assets from one address (an office): no 429, no ban."""
    source = probe.extra[3]
    name = vhost(node, "frontend")["name"]
    count = node.data["nginx_tls_rate_general_burst"] + 40
    out = probe.run(
        "python3", "-c", PROBE_CLIENT, source, node.address, name, str(count), "/assets/app.js"
    )
    try:
        statuses = json.loads(out.stdout)["statuses"]
        assert statuses == [200] * count, statuses
        time.sleep(2)
        assert source not in node.host.check_output("fail2ban-client status nginx-limit-req")
    finally:
        node.host.run(f"fail2ban-client set nginx-limit-req unbanip {source}")


def test_scanners_404s_get_the_source_banned_from_a_log_of_404s_only(node, probe, backend):
    """fail2ban's nginx-botsearch jail reads not-found.log, which holds the 404s only (so it
    does not parse every request), and bans a scanner probing for WordPress."""
    source = probe.extra[3]
    name = vhost(node, "api")["name"]
    retries = int(node.host.check_output("fail2ban-client get nginx-botsearch maxretry"))
    assert node.host.check_output("fail2ban-client get nginx-botsearch logpath").endswith(
        "/var/log/nginx/not-found.log"
    )
    served = get(node, name, "/served-not-in-the-404-log")
    assert served.status == 200
    served_at = time.monotonic()
    try:
        out = probe.run(
            "python3", "-c", PROBE_CLIENT, source, node.address, name, str(retries), "/wp-login.php"
        )
        assert json.loads(out.stdout)["statuses"] == [404] * retries, out.stdout
        assert banned_within(node, "nginx-botsearch", source, seconds=30)
        not_found = node.host.file("/var/log/nginx/not-found.log").content_string
        assert f"{source} - - " in not_found and "/wp-login.php" in not_found
        assert "/served-not-in-the-404-log" not in not_found
        # access.log is buffered: the line is there within the flush time (a worker whose
        # buffer was empty starts the clock with it; the ban can come sooner).
        await_in_access_log(node, "/served-not-in-the-404-log", served_at)
    finally:
        node.host.run(f"fail2ban-client set nginx-botsearch unbanip {source}")


def test_a_request_is_in_access_log_within_the_flush_time(node):
    """access.log is buffered (nginx_tls_access_log_flush_seconds): each line is written at
    most that late, which is what galion-rollout's watch and the request metrics count on
    (fail2ban reads error.log and not-found.log, which are not buffered)."""
    flush = node.data["nginx_tls_access_log_flush_seconds"]
    path = f"/logged-within-the-flush-time-{time.time_ns()}"
    assert get(node, vhost(node, "api")["name"], path).status == 200
    await_in_access_log(node, path, time.monotonic())
    assert f"flush={flush}s" in node.host.check_output("nginx -T 2>/dev/null | grep access.log")


def test_no_nginx_log_is_readable_by_every_user(node):
    """Client addresses and URLs: www-data and the adm group only, like Debian's own."""
    logs = node.host.check_output("stat -c '%n %U:%G %a' /var/log/nginx/*.log").splitlines()
    assert any(line.startswith("/var/log/nginx/not-found.log ") for line in logs), logs
    for line in logs:
        name, owner, mode = line.split()
        assert owner == "www-data:adm" and int(mode, 8) & 0o007 == 0, line


def test_nginx_jails_have_their_own_shorter_bans(node):
    for jail in ("nginx-limit-req", "nginx-botsearch"):
        bantime = node.host.check_output(f"fail2ban-client get {jail} bantime")
        assert int(bantime) == _seconds(node.data["nginx_tls_fail2ban_bantime"]), jail
    maxtime = [
        ln
        for ln in node.host.check_output("fail2ban-client -d").splitlines()
        if "'nginx-limit-req'" in ln and "maxtime" in ln
    ]
    wanted = (
        str(_seconds(node.data["nginx_tls_fail2ban_bantime_max"])),
        node.data["nginx_tls_fail2ban_bantime_max"],
    )
    assert maxtime and any(w in maxtime[-1] for w in wanted), maxtime


def _seconds(duration: str) -> int:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(duration[:-1]) * unit[duration[-1]] if duration[-1] in unit else int(duration)


def test_nginx_config_has_no_ocsp_and_only_modern_tls(node):
    dump = node.host.check_output("nginx -T 2>/dev/null")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in dump
    assert "ssl_stapling on" not in dump
    assert "server_tokens off;" in dump


def loopback(node, path: str) -> str:
    return node.host.check_output(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen("
        f'"http://127.0.0.1:{node.data["nginx_tls_status_port"]}{path}").read().decode())\''
    )


def test_every_worker_accepts_on_a_443_socket_of_its_own(node):
    """SO_REUSEPORT (conf.d/90-galion-https-sockets.conf): the kernel spreads new
    connections over the workers. At bench/edge's load the p99 was 52 ms on one shared
    socket against 34 with one per worker (medians of 6 A/B pairs, bench/RESULTS.md). The
    server that carries the option is not the default: an unknown name still completes
    its handshake with the first virtual host, as before."""
    workers = int(node.host.check_output("pgrep -c -f '^nginx: worker process'"))
    listening = node.host.check_output("ss -Hltn 'sport = :443'").splitlines()
    assert workers >= 1
    for address in ("0.0.0.0:443", "[::]:443"):
        assert sum(address in line.split() for line in listening) == workers, listening
    with tls(node, "unknown-name.invalid") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_stub_status_on_loopback_only(node, probe):
    assert "Active connections" in loopback(node, "/nginx_status")
    assert probe.tcp(node.address, node.data["nginx_tls_status_port"]) != "open"


def test_app_metrics_on_loopback_only(node, backend):
    """The apps' metrics answer the monitoring on nginx's loopback listener, and 404 with
    the usual headers on every public name."""
    path = node.data["nginx_tls_app_metrics_path"]
    for upstream in node.data["nginx_tls_metrics_upstreams"]:
        assert "galion_testapp_requests_total" in loopback(node, f"/apps/{upstream}")
    for v in node.data["nginx_tls_vhosts"]:
        for public in (path, path + "/", path + "?x=1"):
            r = get(node, v["name"], public)
            assert r.status == 404, (v["name"], public)
            assert r.getheader("strict-transport-security"), v["name"]


def test_certbot_renewal_works_and_reloads(node):
    hook = node.host.file("/etc/letsencrypt/renewal-hooks/deploy/galion-reload-nginx")
    assert hook.mode == 0o755 and "systemctl reload nginx" in hook.content_string
    assert node.host.service("certbot.timer").is_enabled
    # --dry-run would switch to Let's Encrypt's staging server: name the configured one.
    dry = node.host.run(
        "REQUESTS_CA_BUNDLE=/etc/galion/acme-ca.pem certbot renew --dry-run "
        f"--no-random-sleep-on-renew --server {node.data['nginx_tls_acme_directory']}"
    )
    assert dry.rc == 0, dry.stdout + dry.stderr
