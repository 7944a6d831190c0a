"""Updating an app service under load through the edge (TLS): a good image ends with no
failed request, an image that never turns healthy and one that fails after cutover each
end with the old version serving and a run that fails naming the service. A WebSocket
open before the update lives on until the old container's drain time is over.

Runs after tests/roles on a converged sandbox; leaves it converged as the data says.
"""

import http.client
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from sandbox.converge import converge
from tests.docker_rules import accepts_before_docker_user
from tests.inventory import in_group
from tests.load import Load

pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(not in_group("app") or not in_group("edge"), reason="no app/edge host"),
]
NODE = in_group("app")[0] if in_group("app") else None
RATE = 200  # requests per second through nginx for the whole update
# Watch window of these updates: longer than the sandbox's, so that the image failing
# some seconds after it started (sandbox/app_image.py: FADES_AFTER) fails inside it.
WATCH = 10


def vhost_of(upstream: str) -> str:
    return next(v["name"] for v in NODE.data["nginx_tls_vhosts"] if v["upstream"] == upstream)


def service(name: str) -> dict:
    return next(s for s in NODE.data["apps_services"] if s["name"] == name)


def with_images(**images: str) -> tuple[str, str]:
    """--data that sets these services' images (test tags of the sandbox image)."""
    services = [
        {**s, "image": f"galion-test-app:{images[s['name']]}"} if s["name"] in images else s
        for s in NODE.data["apps_services"]
    ]
    return (
        "--data",
        "apps_services=" + json.dumps(services),
        "--data",
        f"apps_watch_seconds={WATCH}",
    )


def serving(name: str) -> str:
    """The version the service's public name answers with, asked from the test machine
    (the operator's address: exempt from the rate limits)."""
    host = vhost_of(service(name)["upstream"])
    ctx = ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(NODE.address, 443, timeout=10, context=ctx)
    conn.sock = ctx.wrap_socket(
        socket.create_connection((NODE.address, 443), timeout=10), server_hostname=host
    )
    conn.request("GET", "/version", headers={"Host": host})
    body = conn.getresponse().read().decode()
    conn.close()
    return body.split()[-1]


def containers(name: str) -> list[str]:
    return NODE.host.check_output(
        f"docker ps -a --filter label=galion.service={name} --format '{{{{.Image}}}}'"
    ).split()


def update_under_load(name: str, tag: str, **more_images: str) -> tuple:
    """Converge with `name` (and `more_images`) at new tags while `name`'s public host
    gets RATE requests per second."""
    with Load(NODE.address, vhost_of(service(name)["upstream"]), rate=RATE) as load:
        time.sleep(2)
        result = converge(*with_images(**{name: tag}, **more_images))
        time.sleep(2)
    return result, load


class WebSocketWatch:
    """A WebSocket through the edge to a service, echoing every 0.25 s until it closes;
    also notes when the service's public name first answers with `version`."""

    def __init__(self, name: str, version: str):
        self.name, self.version = name, version
        self.events: dict[str, float] = {}
        host = vhost_of(service(name)["upstream"])
        ctx = ssl._create_unverified_context()
        self.ws = ctx.wrap_socket(
            socket.create_connection((NODE.address, 443), timeout=5), server_hostname=host
        )
        self.ws.sendall(
            (
                f"GET /socket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert self.ws.recv(4096).startswith(b"HTTP/1.1 101")
        self.threads = [threading.Thread(target=self._echo), threading.Thread(target=self._switch)]
        for t in self.threads:
            t.start()

    def _echo(self):
        self.ws.settimeout(2)
        while True:
            try:
                self.ws.sendall(b"ping")
                if self.ws.recv(64) != b"ping":
                    break
            except OSError:
                break
            time.sleep(0.25)
        self.events["closed"] = time.monotonic()

    def _switch(self):
        while "switched" not in self.events and "closed" not in self.events:
            if serving(self.name) == self.version:
                self.events["switched"] = time.monotonic()
            time.sleep(0.25)

    def lived_after_switch(self) -> float:
        for t in self.threads:
            t.join(timeout=30)
        self.ws.close()
        assert "switched" in self.events and "closed" in self.events, self.events
        return self.events["closed"] - self.events["switched"]


@pytest.fixture(scope="module", autouse=True)
def back_to_the_data():
    yield
    converge().check()  # back to the data's images and watch window
    assert {serving(s["name"]) for s in NODE.data["apps_services"]} == {"v1"}


def test_a_good_image_replaces_the_old_one_with_no_failed_request():
    """galion-api under load; galion-voice, in the same run, with a WebSocket open."""
    assert serving("galion-api") == "v1"
    since = NODE.host.check_output("date +%s")
    websocket = WebSocketWatch("galion-voice", "v2")
    result, load = update_under_load("galion-api", "v2", **{"galion-voice": "v2"})
    result.check()
    print(
        f"good update: {len(load.samples)} requests at {load.rate_achieved():.0f}/s, "
        f"{len(load.failed())} failed, {load.retried} resent on a fresh connection, "
        f"p99 {load.p99_ms():.0f} ms"
    )
    assert load.rate_achieved() >= RATE * 0.9
    assert load.failed() == []
    versions = load.versions()
    assert versions[0] == "v1" and versions[-1] == "v2"
    # Once v2 answered, v1 did not again beyond nginx's reload: old workers finish the
    # requests already on their connections (with the old upstream) before they exit.
    answered = [(s.at, s.body.split()[-1]) for s in load.samples if s.status == 200]
    first_v2 = next(at for at, version in answered if version == "v2")
    late_v1 = [at - first_v2 for at, version in answered if version == "v1" and at > first_v2]
    print(
        f"v1 answered {len(late_v1)} times after the first v2, last at +{max(late_v1 or [0]):.2f}s"
    )
    assert all(delay < 1.0 for delay in late_v1), late_v1
    assert containers("galion-api") == ["galion-test-app:v2"]
    # The monitoring reads the apps' metrics through nginx's status listener: from the
    # new container, on whichever port the rollout put it.
    edge = in_group("edge")[0]
    if "galion_api" in edge.data["nginx_tls_metrics_upstreams"]:
        metrics = edge.host.check_output(
            f"curl -fsS -m 5 http://127.0.0.1:{edge.data['nginx_tls_status_port']}/apps/galion_api"
        )
        assert 'galion_testapp_requests_total{version="v2"}' in metrics
    # The previous image stays on the host: rolling back by hand needs no registry.
    assert NODE.host.run("docker image inspect galion-test-app:v1").rc == 0
    # The migration ran once, in the new image, before cutover; the journal has it.
    log = NODE.host.check_output(f"journalctl -q -o cat -t galion-rollout --since @{since}")
    assert log.count("migrated the schema to v2") == 1, log
    # The WebSocket opened before the update lived through the watch window and the
    # drain: the old container kept it until then.
    lived = websocket.lived_after_switch()
    drain = service("galion-voice")["drain_seconds"]
    print(f"WebSocket lived {lived:.1f}s after cutover (drain {drain}s)")
    assert lived >= WATCH + drain - 1


def test_an_image_that_never_turns_healthy_is_removed_and_the_old_one_serves():
    before = serving("galion-api")
    result, load = update_under_load("galion-api", "broken")
    assert result.returncode != 0
    assert "galion-api" in result.stderr and "never turned healthy" in result.stderr
    assert "GET /health" in result.stderr  # the last health answer is named
    assert load.failed() == []
    assert set(load.versions()) == {before}
    assert serving("galion-api") == before
    assert containers("galion-api") == [f"galion-test-app:{before}"]


def test_an_image_that_fails_after_cutover_is_rolled_back():
    before = serving("galion-api")
    result, load = update_under_load("galion-api", "fades")
    assert result.returncode != 0
    assert "galion-api" in result.stderr and "rolled back" in result.stderr
    assert serving("galion-api") == before
    assert containers("galion-api") == [f"galion-test-app:{before}"]
    failed = load.failed()
    window = WATCH
    if failed:
        # Failures only within the detection window, none after the switch back (samples
        # are in the order answers came, so the last failure sent is the latest `at`).
        first, last = min(s.at for s in failed), max(s.at for s in failed)
        assert last - first <= window, (first, last)
        after = [s for s in load.samples if s.at > last]
        assert after and all(s.status == 200 for s in after)
        assert {s.body.split()[-1] for s in after if s.status == 200} == {before}
    print(
        f"failing after cutover: {len(load.samples)} requests, {len(failed)} failed "
        f"within the detection window (watch {window}s)"
    )


def test_a_rollback_after_a_changed_port_pair_returns_to_where_the_old_one_listens():
    """The port pair changed in the same rollout that fails after cutover (an edited
    offset or port map): nginx must go back to the old container's real address, not to
    the one the new config computes for its slot. Run on the host with a copy of the
    service's config as a converge would write it, both ports moved by 20000."""
    name = "galion-frontend"
    before = serving(name)
    servers = f"/etc/nginx/galion-upstreams/{service(name)['upstream']}.servers"
    marker = f"/var/lib/galion/apps/{name}.live"

    def target() -> str:
        return re.search(r"^server (\S+)", NODE.host.file(servers).content_string, re.M)[1]

    target_before, marker_before = target(), NODE.host.file(marker).content_string
    conf = NODE.host.check_output(f"cat /etc/galion/apps/{name}.conf")
    conf = re.sub(r"^(PORT_[AB])=(\d+)$", lambda m: f"{m[1]}={int(m[2]) + 20000}", conf, flags=re.M)
    conf = re.sub(r"^IMAGE=.*$", "IMAGE=galion-test-app:fades", conf, flags=re.M)
    conf = re.sub(r"^CONFIG_HASH=.*$", "CONFIG_HASH=moved-ports", conf, flags=re.M)
    conf = re.sub(r"^WATCH_SECONDS=.*$", f"WATCH_SECONDS={WATCH}", conf, flags=re.M)
    assert "moved-ports" in conf and str(int(target_before.split(":")[1]) + 20000) in conf
    moved = "/tmp/galion-test-moved-ports"
    NODE.host.check_output(
        f"rm -rf {moved} && install -d -m 700 {moved} && "
        f"cat > {moved}/{name}.conf <<'EOF'\n{conf}\nEOF"
    )
    with Load(NODE.address, vhost_of(service(name)["upstream"]), rate=RATE) as load:
        run = NODE.host.run(f"GALION_APPS_CONF_DIR={moved} galion-rollout {name}")
    NODE.host.run(f"rm -rf {moved}")
    assert run.rc == 1, run.stderr
    assert "rolled back" in run.stderr and "switched back" in run.stderr
    assert target() == target_before
    assert serving(name) == before
    assert containers(name) == [f"galion-test-app:{before}"]
    assert NODE.host.file(marker).content_string == marker_before
    failed = load.failed()
    if failed:  # only within the watch window: all answered after the switch back
        after = [s for s in load.samples if s.at > max(s.at for s in failed)]
        assert after and all(s.status == 200 for s in after)
        assert {s.body.split()[-1] for s in after} == {before}


def test_a_switch_nginx_refuses_leaves_the_old_version_serving():
    """nginx -t fails at the moment of the switch (here: a broken file beside ours):
    the servers file goes back, the new container goes, the old one never stopped."""
    before = serving("galion-frontend")
    servers = f"/etc/nginx/galion-upstreams/{service('galion-frontend')['upstream']}.servers"
    servers_before = NODE.host.file(servers).content_string
    broken = "/etc/nginx/conf.d/zz-broken-by-test.conf"
    NODE.host.check_output(f"echo 'this is not nginx;' > {broken}")
    try:
        result, load = update_under_load("galion-frontend", "v2")
    finally:
        NODE.host.check_output(f"rm -f {broken}")
    assert result.returncode != 0
    assert "galion-frontend" in result.stderr and "the switch to" in result.stderr
    assert load.failed() == []
    assert set(load.versions()) == {before}
    assert NODE.host.file(servers).content_string == servers_before
    assert containers("galion-frontend") == [f"galion-test-app:{before}"]
    assert NODE.host.run("nginx -t").rc == 0


def test_a_failing_migration_keeps_the_old_version_and_prints_no_secret():
    """The migration fails after printing the database URL (an app's traceback can):
    the run fails naming it, the old version serves, the password is masked in the
    run's output and in the journal."""
    before = serving("galion-api")
    env = NODE.host.check_output("grep '^DATABASE_URL=' /etc/galion/env/galion.env")
    password = re.search(r"://[^:/@]*:([^@]+)@", env).group(1)
    migrate = (
        "/usr/bin/python3 -S -c \"import os, sys; print('connecting to', "
        "os.environ['DATABASE_URL']); sys.exit(3)\""
    )
    since = NODE.host.check_output("date +%s")
    target = "galion-test-app:" + ("v1" if before == "v2" else "v2")  # a new image: it migrates
    services = [
        {**s, "image": target, "migrate": migrate} if s["name"] == "galion-api" else s
        for s in NODE.data["apps_services"]
    ]
    result = converge("--data", "apps_services=" + json.dumps(services))
    assert result.returncode != 0
    assert "galion-api" in result.stderr and "migration failed (exit 3)" in result.stderr
    assert "connecting to" in result.stderr and "***" in result.stderr
    log = NODE.host.check_output(f"journalctl -q -o cat -t galion-rollout --since @{since}")
    assert "connecting to" in log
    assert password not in result.stdout + result.stderr + log
    assert serving("galion-api") == before
    assert containers("galion-api") == [f"galion-test-app:{before}"]


def test_a_rollout_killed_after_cutover_is_finished_by_the_next_converge():
    """The converge dies during the watch window (operator's laptop, lost SSH): both
    containers are left, nginx on the new one. The next converge resumes: watches the
    new version again, drains and removes the old one; no request fails meanwhile."""
    before = serving("galion-frontend")
    target = "v1" if before == "v2" else "v2"
    upstream = service("galion-frontend")["upstream"]
    since = NODE.host.check_output("date +%s")
    args = (
        "-y",
        "inventories/sandbox.py",
        "deploy.py",
        *with_images(**{"galion-frontend": target}),
    )
    with Load(NODE.address, vhost_of(upstream), rate=RATE) as load:
        run = subprocess.Popen(
            [sys.executable, "-m", "pyinfra", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            log = NODE.host.check_output(f"journalctl -q -o cat -t galion-rollout --since @{since}")
            if f"nginx sends {upstream} to" in log:
                break
            time.sleep(0.5)
        # [g]: the pattern must not match the shell that runs pkill.
        NODE.host.run("pkill -KILL -f '[g]alion-rollout galion-frontend'")
        assert run.wait(timeout=120) != 0
        assert sorted(containers("galion-frontend")) == sorted(
            [f"galion-test-app:{before}", f"galion-test-app:{target}"]
        )
        assert serving("galion-frontend") == target
        converge(*with_images(**{"galion-frontend": target})).check()
        time.sleep(1)
    log = NODE.host.check_output(f"journalctl -q -o cat -t galion-rollout --since @{since}")
    assert "resuming an interrupted rollout" in log
    assert containers("galion-frontend") == [f"galion-test-app:{target}"]
    assert load.failed() == []
    again = converge(*with_images(**{"galion-frontend": target})).check()
    assert again.changed == []


# What the docker role wrote before it turned Docker's userland proxy off (the key absent:
# Docker's default, a docker-proxy process per published port). reset-failed: docker.service
# refuses a fourth start within a minute.
WITH_USERLAND_PROXY = (
    'python3 -c \'import json; p = "/etc/docker/daemon.json"; d = json.load(open(p)); '
    'd.pop("userland-proxy", None); open(p, "w").write(json.dumps(d, indent=2) + "\\n")\''
    " && systemctl reset-failed docker && systemctl restart docker"
)


def restart_under_load(restart) -> Load:
    with Load(NODE.address, vhost_of(service("galion-api")["upstream"]), rate=RATE) as load:
        time.sleep(2)
        restart()
        time.sleep(2)
    failed = load.failed()
    span = failed[-1].at - failed[0].at if failed else 0.0
    print(
        f"engine restart: {len(load.samples)} requests, {len(failed)} failed within "
        f"{span:.2f}s, {load.retried} resent on a fresh connection"
    )
    assert load.rate_achieved() >= RATE * 0.9
    return load


def checked_since(name: str, since: float, seconds: float) -> bool:
    """Whether Docker ran the health check of `name`'s container after `since`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        starts = NODE.host.check_output(
            f"docker inspect --format '{{{{range .State.Health.Log}}}}{{{{.Start.Unix}}}} "
            f"{{{{end}}}}' $(docker ps -q --filter label=galion.service={name})"
        ).split()
        if any(float(t) > since for t in starts):
            return True
        time.sleep(1)
    return False


def test_once_the_kernel_publishes_the_ports_an_engine_restart_fails_no_request():
    """A host converged before this change publishes its ports through docker-proxy. The
    converge that turns it off restarts the engine once (live-restore keeps the
    containers): the proxies go at once, the kernel's rules come with the new engine, and
    requests between the two fail (0.4 s at 200/s, as any engine restart did before, by
    hand). After it, an engine restart (an upgrade of docker.io, a changed daemon.json)
    fails none: the rules stay in the kernel while the engine is down."""
    NODE.host.check_output(WITH_USERLAND_PROXY)
    assert NODE.host.run("pgrep -x docker-proxy").rc == 0

    def migrate():
        changed = converge().check().changed
        assert any(c.startswith("Docker engine | Restart Docker") for c in changed), changed

    switch = restart_under_load(migrate)
    failed = switch.failed()
    assert not failed or failed[-1].at - failed[0].at < 2.0, "more than a blip"
    assert NODE.host.run("pgrep -x docker-proxy").rc == 1
    assert accepts_before_docker_user(NODE) == []

    restarted_at = float(NODE.host.check_output("date +%s.%N"))
    restart = restart_under_load(
        lambda: NODE.host.check_output("systemctl reset-failed docker && systemctl restart docker")
    )
    assert restart.failed() == []
    # Health checks run again after the restart (Docker 20.10 stops them for live-restored
    # containers unless galion-docker-health-rearm paused and unpaused each one).
    for name in (s["name"] for s in NODE.data["apps_services"]):
        assert checked_since(name, restarted_at, seconds=15), name
    assert {serving(s["name"]) for s in NODE.data["apps_services"]} == {"v1"}
