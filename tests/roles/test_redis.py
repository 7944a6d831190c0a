"""Redis on db hosts, checked live (operations/redis.py)."""

from tests.inventory import private_or_loopback, skip_unless_also_app

GROUP = "db"


def redis_as_app(node, command: str):
    skip_unless_also_app(node)
    env = f"{node.data['app_env_dir']}/galion.env"
    return node.host.run(
        f"bash -c 'set -a; . {env}; set +a; redis-cli --no-auth-warning "
        f'-u "$REDIS_URL" {command}\''
    )


def info(node, section: str) -> dict[str, str]:
    out = redis_as_app(node, f"info {section}").stdout
    return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)


def test_unauthenticated_commands_refused(node):
    out = node.host.run(f"redis-cli -p {node.data['redis_port']} ping")
    assert "NOAUTH" in out.stdout + out.stderr


def test_app_user_works_but_not_dangerous_commands(node):
    assert redis_as_app(node, "ping").stdout.strip() == "PONG"
    for command in ("flushall", "config get maxmemory", "save", "keys '*'"):
        out = redis_as_app(node, command)
        assert "NOPERM" in out.stdout + out.stderr, command


def test_memory_and_persistence_settings(node):
    memory = info(node, "memory")
    assert int(memory["maxmemory"]) == node.data["redis_maxmemory_mb"] * 1024 * 1024
    assert memory["maxmemory_policy"] == node.data["redis_maxmemory_policy"]
    assert info(node, "persistence")["aof_enabled"] == "1"


def test_bound_to_loopback_and_the_app_containers_bridge_only(node):
    listeners = node.host.check_output(f"ss -Htln 'sport = :{node.data['redis_port']}'")
    addresses = {line.split()[3].rsplit(":", 1)[0] for line in listeners.splitlines()}
    wanted = {"127.0.0.1", "[::1]", private_or_loopback(node)}
    if "app" in node.groups:  # the single box: its containers connect on the bridge
        gateway = node.data["docker_bridge_address"].split("/")[0]
        assert gateway in addresses
        wanted.add(gateway)
    assert addresses and addresses <= wanted, addresses


def test_data_survives_a_restart(node):
    assert redis_as_app(node, "set galion:test:persist kept-across-restart").stdout.strip() == "OK"
    node.host.check_output("systemctl restart redis-server")
    for _ in range(20):
        if redis_as_app(node, "ping").stdout.strip() == "PONG":
            break
        node.host.run("sleep 0.5")
    assert redis_as_app(node, "get galion:test:persist").stdout.strip() == "kept-across-restart"


def test_transparent_huge_pages_off_where_the_host_allows(node):
    assert node.host.service("galion-disable-thp.service").is_enabled
    thp = node.host.file("/sys/kernel/mm/transparent_hugepage/enabled")
    in_container = node.host.run("systemd-detect-virt --container").stdout.strip() not in (
        "",
        "none",
    )
    if not in_container and thp.exists:
        assert "[never]" in thp.content_string


def test_app_env_files_are_private(node):
    skip_unless_also_app(node)
    for stack in node.data["app_env_stacks"]:
        f = node.host.file(f"{node.data['app_env_dir']}/{stack['name']}.env")
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def redis_as_exporter(node, command: str):
    return node.host.run(
        "bash -c 'set -a; . /etc/default/prometheus-redis-exporter; set +a; "
        f"redis-cli --no-auth-warning -p {node.data['redis_port']} "
        f'--user "$REDIS_USER" --pass "$REDIS_PASSWORD" {command}\''
    )


def test_exporter_user_reads_statistics_and_no_key(node):
    """The exporter's login (its password is on the host, in a root-only file) can read
    INFO and settings, and neither read nor write data nor change settings."""
    assert "redis_version" in redis_as_exporter(node, "info server").stdout
    assert "maxmemory" in redis_as_exporter(node, "config get maxmemory").stdout
    redis_as_app(node, "set galion:test:private value")
    for command in (
        "get galion:test:private",
        "set galion:test:private changed",
        "keys '*'",
        "scan 0",
        "config set maxmemory 1mb",
        "flushall",
        "acl list",
    ):
        out = redis_as_exporter(node, command)
        assert "NOPERM" in out.stdout + out.stderr, command
    assert redis_as_app(node, "get galion:test:private").stdout.strip() == "value"
