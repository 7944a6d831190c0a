"""Docker and the apps' containers on app hosts, checked live (operations/docker.py,
operations/apps/)."""

import json
import shlex
import time

import pytest

from tests.docker_rules import accepts_before_docker_user
from tests.inventory import in_group

GROUP = "app"


def docker_info(node) -> dict:
    return json.loads(node.host.check_output("docker info --format '{{json .}}'"))


def inspect(node, name: str) -> dict:
    return json.loads(node.host.check_output(f"docker inspect {name}"))[0]


def health_log(info: dict) -> list[str]:
    """Docker's last health checks of a container: when, how long, exit code, output."""
    return [
        f"{c['Start'][11:23]} +{c['End'][17:23]} exit {c['ExitCode']}: {c['Output'][-200:]}"
        for c in info["State"]["Health"]["Log"]
    ]


def live_containers(node) -> dict[str, dict]:
    """Each service's running container, by service name."""
    names = node.host.check_output(
        "docker ps --filter label=galion.service --format '{{.Names}}'"
    ).split()
    found = {}
    for name in names:
        info = inspect(node, name)
        found[info["Config"]["Labels"]["galion.service"]] = info
    return found


def test_docker_runs_with_the_daemon_json_values_live(node):
    info = docker_info(node)
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True
    assert info["ServerVersion"]
    bridge = json.loads(node.host.check_output("docker network inspect bridge"))[0]
    subnet = bridge["IPAM"]["Config"][0]
    gateway, prefix = node.data["docker_bridge_address"].split("/")
    assert subnet.get("Gateway") == gateway or subnet["Subnet"].endswith(f"/{prefix}")
    assert node.host.interface("docker0").addresses[0] == gateway
    metrics = node.host.run(f"curl -fsS http://{node.data['docker_metrics_address']}/metrics")
    assert metrics.rc == 0 and "engine_daemon" in metrics.stdout
    listener = node.host.check_output(
        f"ss -Htln 'sport = :{node.data['docker_metrics_address'].rsplit(':', 1)[1]}'"
    )
    assert node.data["docker_metrics_address"] in listener
    # Published ports by the kernel's NAT, no docker-proxy process in between (dockerd
    # only holds the port): the live port of a service answers on loopback.
    assert node.host.run("pgrep -x docker-proxy").rc == 1
    port = node.data["nginx_tls_upstream_ports"][node.data["apps_services"][0]["upstream"]]
    slots = (port, port + node.data["apps_alternate_port_offset"])
    answers = [node.host.run(f"curl -fsS -m 5 http://127.0.0.1:{p}/health").rc for p in slots]
    assert 0 in answers, answers


def test_docker_user_drops_new_connections_from_outside_last(node):
    rules = node.host.check_output("iptables -S DOCKER-USER").splitlines()
    drops = ["-A DOCKER-USER -o docker0 -j DROP", "-A DOCKER-USER -o br-+ -j DROP"]
    assert all(d in rules for d in drops), rules
    assert rules.index(drops[0]) > rules.index(
        "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    )
    # Docker appends its own catch-all RETURN when it starts: harmless after the drops.
    catch_all = [i for i, r in enumerate(rules) if r == "-A DOCKER-USER -j RETURN"]
    assert all(i > rules.index(drops[1]) for i in catch_all), rules
    assert accepts_before_docker_user(node) == []


def test_every_service_runs_healthy_with_its_limits_and_capped_logs(node):
    live = live_containers(node)
    for service in node.data["apps_services"]:
        info = live[service["name"]]
        assert info["State"]["Running"], service["name"]
        assert info["State"]["Health"]["Status"] == "healthy", (service["name"], health_log(info))
        # The knob's interval, not the image's (the sandbox image says 30 s).
        interval = node.data["apps_health_check_interval_seconds"]
        assert info["Config"]["Healthcheck"]["Interval"] == interval * 1_000_000_000
        assert info["HostConfig"]["Memory"] == service["memory_mb"] * 1024 * 1024
        assert info["HostConfig"]["NanoCpus"] == int(service["cpus"] * 1e9)
        # The OOM killer's order: the kernel's own score of the container's process.
        assert info["HostConfig"]["OomScoreAdj"] == node.data["apps_oom_score_adjust"]
        pid = info["State"]["Pid"]
        score = node.host.check_output(f"cat /proc/{pid}/oom_score_adj")
        assert int(score) == node.data["apps_oom_score_adjust"] > 0
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {
                "max-file": str(node.data["docker_log_max_files"]),
                "max-size": node.data["docker_log_max_size"],
            },
        }
        assert info["Config"]["Image"] == service["image"]
        # Published on loopback only, on the plan's port or its alternate.
        bindings = [b for bs in info["HostConfig"]["PortBindings"].values() for b in bs]
        port = node.data["nginx_tls_upstream_ports"][service["upstream"]]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        assert int(bindings[0]["HostPort"]) in (
            port,
            port + node.data["apps_alternate_port_offset"],
        )


def database_address(node) -> str:
    """Where the apps of `node` reach PgBouncer: the Docker bridge's gateway when the
    database is on the same host, else the primary's private address."""
    if "db" in node.groups:
        return node.data["docker_bridge_address"].split("/")[0]
    primary = in_group("db")[0]
    return primary.data.get("private_address", primary.address)


def colocated(node) -> None:
    """Skip a check of the apps' containers reaching the database on their own host."""
    if "db" not in node.groups:
        pytest.skip("the database is on another host (tests/fleet checks the apps reach it)")


def test_environment_files_are_root_only_and_point_at_the_database(node):
    for stack in node.data["app_env_stacks"]:
        f = node.host.file(f"{node.data['app_env_dir']}/{stack['name']}.env")
        assert f.user == "root" and f.mode == 0o600
        assert f"@{database_address(node)}:{node.data['pgbouncer_port']}/" in f.content_string
    conf = node.host.file(f"/etc/galion/apps/{node.data['apps_services'][0]['name']}.conf")
    assert conf.user == "root" and conf.mode == 0o600


def _from_a_container(node, stack: str, command: str):
    """Run a host binary inside a throwaway container of the app image, on the same bridge
    and with the stack's environment file: the path the apps' own connections take."""
    image = node.data["apps_services"][0]["image"]
    env = f"{node.data['app_env_dir']}/{stack}.env"
    return node.host.run(
        f"docker run --rm --env-file {env} -v /usr:/usr:ro "
        f"-v /etc/alternatives:/etc/alternatives:ro "
        f"--entrypoint /bin/sh {image} -c {shlex.quote(command)}"
    )


def test_the_apps_containers_reach_pgbouncer_and_redis_with_their_credentials(node):
    colocated(node)  # the host's own psql and redis-cli, run in the container
    psql = node.host.check_output("ls /usr/lib/postgresql/*/bin/psql | tail -n 1")
    for stack in node.data["app_env_stacks"]:
        # The shim shell runs one command: env(1) would not expand, so python does.
        sql = _from_a_container(
            node,
            stack["name"],
            "/usr/bin/python3 -S -c \"import os; os.execv('"
            + psql
            + "', ['psql', '-X', '-At', os.environ['DATABASE_URL'], '-c', "
            "'select current_user, inet_server_port()'])\"",
        )
        assert sql.rc == 0, sql.stderr
        db = next(d for d in node.data["postgres_databases"] if d["name"] == stack["database"])
        # PgBouncer connects to PostgreSQL: the server port is PostgreSQL's.
        assert sql.stdout.strip() == f"{db['owner']}|{node.data['postgres_port']}"
        ping = _from_a_container(
            node,
            stack["name"],
            "/usr/bin/python3 -S -c \"import os; os.execv('/usr/bin/redis-cli', "
            "['redis-cli', '--no-auth-warning', '-u', os.environ['REDIS_URL'], 'ping'])\"",
        )
        assert ping.rc == 0 and ping.stdout.strip() == "PONG", ping.stdout + ping.stderr


def port_states_from_a_container(node, script: str, *args, root: bool = False) -> dict:
    """Run `script` with `args` in the apps' image on the default bridge (as root if asked)
    and read its "PORT STATE" lines."""
    node.host.check_output(f"printf %s {shlex.quote(script)} > /tmp/galion-in-container.py")
    image = node.data["apps_services"][0]["image"]
    out = node.host.check_output(
        f"docker run --rm {'--user 0 ' if root else ''}"
        f"-v /tmp/galion-in-container.py:/script.py:ro {image} "
        f"/usr/bin/python3 -S /script.py {' '.join(map(str, args))}"
    )
    return dict(line.split() for line in out.splitlines())


def test_a_container_cannot_reach_postgresql_itself_or_other_host_ports(node):
    """Only PgBouncer and Redis are open to the bridge: PostgreSQL's own port and a port
    the host listens on everywhere but UFW does not open stay closed to containers (UFW's
    default deny applies to them too)."""
    colocated(node)
    gateway = node.data["docker_bridge_address"].split("/")[0]
    script = (
        "import socket, sys\n"
        "for port in sys.argv[2:]:\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    try:\n"
        "        s.connect((sys.argv[1], int(port))); print(port, 'open')\n"
        "    except OSError:\n"
        "        print(port, 'closed')\n"
    )
    ports = [node.data["postgres_port"], node.data["pgbouncer_port"], node.data["redis_port"]]
    node.host.run(
        "nohup timeout 30 python3 -c 'import socket, time; s = socket.socket(); "
        's.bind(("0.0.0.0", 18080)); s.listen(4); time.sleep(30)\' >/dev/null 2>&1 &'
    )
    state = port_states_from_a_container(node, script, gateway, *ports, 18080)
    assert (
        node.host.run(
            "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 18080), 2)'"
        ).rc
        == 0
    )
    assert state == {
        str(node.data["postgres_port"]): "closed",
        str(node.data["pgbouncer_port"]): "open",
        str(node.data["redis_port"]): "open",
        "18080": "closed",
    }


# Run in a container as root (a compromised app): TCP SYNs to 127.0.0.1, each port, sent
# as raw Ethernet frames to the bridge's gateway (the host), and which ports answer with
# SYN-ACK. The kernel would never route 127.0.0.1 off the container's own loopback.
FORGED_LOOPBACK_SYNS = r"""
import socket, struct, sys, time
gateway_mac, ports = bytes.fromhex(sys.argv[1].replace(":", "")), [int(p) for p in sys.argv[2:]]
src = socket.inet_aton(socket.gethostbyname(socket.gethostname()))
dst = socket.inet_aton("127.0.0.1")
def checksum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
raw.bind(("eth0", 0))
own_mac = raw.getsockname()[4]
for port in ports:
    tcp = struct.pack("!HHIIBBHHH", 40000 + port % 20000, port, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, 20)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    raw.send(gateway_mac + own_mac + b"\x08\x00" + ip + tcp)
answered, end = set(), time.time() + 3
raw.settimeout(0.2)
while time.time() < end:
    try:
        ip = raw.recv(2048)[14:]
    except socket.timeout:
        continue
    head = (ip[0] & 15) * 4
    if ip[9] == 6 and ip[16:20] == src and ip[head + 13] & 0x12 == 0x12:
        answered.add(struct.unpack("!H", ip[head : head + 2])[0])
for port in ports:
    print(port, "answers" if port in answered else "silent")
"""


def test_a_container_forging_packets_to_the_hosts_loopback_reaches_only_what_the_bridge_may(
    node,
):
    """With Docker's userland proxy off, Docker lets packets for 127.0.0.1 in from the bridge
    (route_localnet on docker0). UFW's default deny on input is what keeps a container off
    the services the host keeps on loopback: PgBouncer answers such a packet (the bridge
    may reach it: the check works), PostgreSQL, the engine's metrics and nginx's status
    listener do not."""
    colocated(node)
    assert (
        node.host.file("/proc/sys/net/ipv4/conf/docker0/route_localnet").content_string.strip()
        == "1"
    )
    gateway_mac = node.host.file("/sys/class/net/docker0/address").content_string.strip()
    closed = [
        node.data["postgres_port"],
        int(node.data["docker_metrics_address"].rsplit(":", 1)[1]),
        node.data["nginx_tls_status_port"],
    ]
    state = port_states_from_a_container(
        node, FORGED_LOOPBACK_SYNS, gateway_mac, node.data["pgbouncer_port"], *closed, root=True
    )
    assert state == {
        str(node.data["pgbouncer_port"]): "answers",
        **{str(port): "silent" for port in closed},
    }


def test_no_container_port_answers_another_host_not_even_one_published_by_hand(node, probe):
    image = node.data["apps_services"][0]["image"]
    service_port = node.data["nginx_tls_upstream_ports"][node.data["apps_services"][0]["upstream"]]
    node.host.check_output(
        f"docker run -d --rm --name galion-test-by-hand -p 18081:8000 -e PORT=8000 {image}"
    )
    try:
        # It listens on every address of the host, and answers there from the host itself...
        for _ in range(20):
            if node.host.run(f"curl -fsS -m 2 http://{node.address}:18081/health").rc == 0:
                break
            time.sleep(0.5)
        assert node.host.run(f"curl -fsS -m 2 http://{node.address}:18081/health").rc == 0
        # ...but not from another machine, nor the apps' own ports, even after ufw reloads.
        answers = probe.tcp_ports(node.address, [18081, service_port])
        assert answers[18081] == "filtered"
        assert answers[service_port] in ("filtered", "refused")
        node.host.check_output("ufw reload")
        assert probe.tcp(node.address, 18081) == "filtered"
    finally:
        node.host.run("docker rm -f galion-test-by-hand")
    # What this host serves to the outside still answers: the edge, or SSH on an app host.
    port = 443 if "edge" in node.groups else node.data["base_ssh_port"]
    assert probe.tcp(node.address, port) == "open"


def test_every_nginx_listener_names_no_version(node):
    """Each plain-HTTP listener of the host's nginx (the edge's, or an app host's proxy
    and its status listener) answers with a bare "Server: nginx"."""
    listeners = node.host.check_output(
        "ss -Hltnp | awk '/\"nginx\"/ {print $4}' | grep -v ':443$' | sort -u"
    ).split()
    assert listeners
    answered = 0
    for listener in listeners:
        address, _, port = listener.rpartition(":")
        address = {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "[::]": "[::1]"}.get(address, address)
        headers = node.host.run(f"curl -s -m 3 -o /dev/null -D - http://{address}:{port}/").stdout
        server = [h for h in headers.splitlines() if h.lower().startswith("server:")]
        if server:
            answered += 1
            assert [h.strip() for h in server] == ["Server: nginx"], (listener, headers)
    assert answered, listeners
