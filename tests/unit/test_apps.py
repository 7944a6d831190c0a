"""The app tier's decisions without hosts: the memory plan, what restarts a container,
where ports are published, the DOCKER-USER rules and the data checks. Which container is
live and whether a service's rollout is finished: galion-rollout decides it
(tests/unit/test_rollout.py, its `status`)."""

import subprocess

import pytest
from pyinfra.api.exceptions import DeployError

import operations
from galion import role
from galion.ops import render
from operations import apps, docker


class Data(dict):
    """Host data as roles see it: attributes and .get()."""

    __getattr__ = dict.__getitem__


def data(**changes) -> Data:
    d = Data(operations.knobs())
    d.update(
        postgres_databases=[],
        app_env_stacks=operations.knobs()["app_env_stacks"],
        docker_bridge_address="172.19.0.1/24",
        postgres_memory_budget_mb=8192,
        redis_maxmemory_mb=2048,
        base_ssh_trusted_cidrs=[],
    )
    d.update(changes)
    return d


class Inventory:
    def __init__(self, **groups):
        self.groups = groups

    def get_group(self, name, default=None):
        return self.groups.get(name, default)


def test_the_plan_s_apps_and_data_tier_do_not_fit_16_gb_with_an_8_gb_database():
    plan = apps.memory.memory_plan(data(), {"app", "db"})
    assert plan["galion-api"] == 1536 and plan["galion-frontend"] == 384
    with pytest.raises(DeployError) as err:
        apps.memory.check_memory_plan(plan, 15_990, "titanaxe")
    message = str(err.value)
    assert "titanaxe" in message and "15990 MB" in message
    assert f"needs {sum(plan.values())} MB" in message
    assert "PostgreSQL (postgres_memory_budget_mb) 8192" in message
    assert "galion-voice 1536" in message


def test_the_plan_fits_with_the_architecture_s_database_budget():
    plan = apps.memory.memory_plan(data(postgres_memory_budget_mb=6144), {"app", "db"})
    apps.memory.check_memory_plan(plan, 15_990, "titanaxe")  # no error
    # An app-only host of a fleet counts only its containers and the reserve.
    assert "Redis (redis_maxmemory_mb)" not in apps.memory.memory_plan(data(), {"app"})


def _conf(d, **service_changes):
    service = {**d.apps_services[1], **service_changes}
    return apps.settings.service_conf(d, service, "127.0.0.1", "DATABASE_URL=x\n")


def test_a_new_image_limit_or_environment_changes_the_hash_watch_settings_do_not():
    d = data()
    base = apps.settings.config_hash(_conf(d))
    assert apps.settings.config_hash(_conf(d, image="ghcr.io/galion-app/galion-api:1.0.1")) != base
    assert apps.settings.config_hash(_conf(d, memory_mb=2048)) != base
    other_env = apps.settings.service_conf(d, d.apps_services[1], "127.0.0.1", "DATABASE_URL=y\n")
    assert apps.settings.config_hash(other_env) != base
    assert apps.settings.config_hash(_conf(data(apps_watch_seconds=99), drain_seconds=5)) == base
    # The health-check interval is part of the container (docker run --health-interval).
    assert apps.settings.config_hash(_conf(data(apps_health_check_interval_seconds=30))) != base
    assert "HEALTH_INTERVAL=''\n" in _conf(data(apps_health_check_interval_seconds=None))
    conf = _conf(d)
    assert "HEALTH_INTERVAL=10\n" in conf
    assert "PORT_A=8001\n" in conf and "PORT_B=18001\n" in conf
    assert "MIGRATE='alembic upgrade head'\n" in conf


def test_migrations_run_on_the_first_app_host_and_back_up_only_beside_the_database():
    d = data()
    service = d.apps_services[1]
    first = apps.settings.service_conf(d, service, "127.0.0.1", "", migrates=True, db_here=True)
    assert "MIGRATE='alembic upgrade head'\n" in first
    assert "BACKUP_BEFORE_MIGRATE=true\n" in first
    assert "MIGRATE_TIMEOUT=600\n" in first
    other = apps.settings.service_conf(d, service, "10.0.0.3", "", migrates=False, db_here=False)
    assert "MIGRATE=''\n" in other and "BACKUP_BEFORE_MIGRATE=false\n" in other
    # Who migrates is no part of the container's make-up.
    assert apps.settings.config_hash(first) == apps.settings.config_hash(
        apps.settings.service_conf(d, service, "127.0.0.1", "", migrates=False, db_here=False)
    )


def test_docker_user_drops_new_outside_connections_last_and_lets_listed_sources_in():
    rules = docker.docker_user_rules(data(docker_published_port_sources=["10.0.0.1/32"]))
    assert rules[0].endswith("--ctstate RELATED,ESTABLISHED -j RETURN")
    assert "-A DOCKER-USER -s 10.0.0.1/32 -j RETURN" in rules
    # Only traffic to the containers' bridges is dropped: other forwarding is not ours.
    assert rules[-2:] == ["-A DOCKER-USER -o docker0 -j DROP", "-A DOCKER-USER -o br-+ -j DROP"]
    assert "-A DOCKER-USER -j DROP" not in rules


def test_after_init_is_valid_shell_and_loads_the_rules_atomically(tmp_path):
    script = tmp_path / "after.init"
    script.write_text(
        render("docker/etc/ufw/after.init.j2", rules=docker.docker_user_rules(data()))
    )
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert "iptables-restore --noflush" in text and ":DOCKER-USER - [0:0]" in text
    # `ufw disable` leaves the rules: containers never become reachable by accident.
    out = subprocess.run(["sh", str(script), "stop"], capture_output=True, text=True)
    assert out.returncode == 0


def test_daemon_json_carries_the_knobs():
    settings = docker.daemon_settings(data())
    assert settings["bip"] == "172.19.0.1/24"
    assert settings["live-restore"] is True
    assert settings["userland-proxy"] is False
    assert settings["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert settings["metrics-addr"] == "127.0.0.1:9323"


def test_docker_ranges_may_not_overlap_the_private_network_or_each_other():
    ok = data(private_address="10.0.0.2", ssh_hostname="203.0.113.2")
    assert docker._check_overlaps("h", ok, {"app"}) == []
    clash = data(private_address="172.19.0.5")
    problems = docker._check_overlaps("h", clash, {"app"})
    assert [p.key for p in problems] == ["docker_bridge_address/private_address"]
    pools = data(docker_address_pools=[{"base": "172.19.0.0/16", "size": 24}])
    assert [p.key for p in docker._check_overlaps("h", pools, {"app"})] == [
        "docker_bridge_address/docker_address_pools"
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"image": "ghcr.io/galion-app/galion-api:latest"},
        {"image": "ghcr.io/galion-app/galion-api"},
        {"upstream": "nope"},
        {"stack": "nope"},
        {"memory_mb": 8},
        {"name": "Galion API"},
        {"name": "status"},  # galion-rollout's verb
    ],
)
def test_a_bad_service_is_named_with_its_index(change):
    d = data()
    d["apps_services"] = [dict(s) for s in d.apps_services]
    d["apps_services"][1].update(change)
    problems = apps.checks.check_services("h", d, {"app"})
    assert [p.key for p in problems] == ["apps_services[1]"]


def test_the_default_services_pass():
    assert apps.checks.check_services("h", data(), {"app"}) == []


def test_rollouts_run_one_after_another_unless_parallel_is_allowed(tmp_path):
    assert apps.rollout.rollout_command(["a", "b"], 1) == (
        "/usr/local/sbin/galion-rollout a && /usr/local/sbin/galion-rollout b"
    )
    parallel = apps.rollout.rollout_command(["a", "b", "c"], 3)
    # Run for real with a stand-in rollout: every service gets one call, any failure fails.
    fake = tmp_path / "galion-rollout"
    fake.write_text('#!/bin/sh\necho "$1" >> "$(dirname "$0")/calls"\n[ "$1" != b ]\n')
    fake.chmod(0o755)
    out = subprocess.run(
        ["sh", "-c", parallel.replace(apps.rollout.ROLLOUT, str(fake))],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert sorted((tmp_path / "calls").read_text().split()) == ["a", "b", "c"]


def test_parallel_updates_count_the_second_containers_in_the_memory_plan():
    plan = apps.memory.memory_plan(data(apps_parallel_rollouts=3), {"app"})
    assert plan["second containers of parallel updates (apps_parallel_rollouts)"] == 1536 * 2
    assert not any("parallel" in k for k in apps.memory.memory_plan(data(), {"app"}))


def _rollout_function(name: str) -> str:
    """One shell function of galion-rollout, as written (from `name() {` to its `}`)."""
    text = (apps.FILES / "galion-rollout").read_text()
    start = text.index(f"\n{name}() {{") + 1
    return text[start : text.index("\n}\n", start) + 3]


def test_rollout_output_masks_the_environment_files_secrets(tmp_path):
    env = tmp_path / "app.env"
    env.write_text(
        "# a comment=notasecretvalue\n"
        "DATABASE_URL=postgresql://galion:pgbouncer-s3cret@172.19.0.1:6432/galion\n"
        "REDIS_URL=redis://app:redis-pw-123@172.19.0.1:6379/0\n"
        "SESSION_KEY=abcdefgh12345678\n"
        "ENCODED_URL=postgresql://u:p%40ss%3Aword-9@db/x\n"
        "SHORT=abc\n"
    )
    printed = (
        "connecting to postgresql://galion:pgbouncer-s3cret@172.19.0.1:6432/galion failed; "
        "password pgbouncer-s3cret, redis-pw-123 and key abcdefgh12345678, abc stays; "
        "decoded p@ss:word-9"
    )
    script = f'{_rollout_function("redact")}\nENV_FILE={env}\nredact "$1"\n'
    out = subprocess.run(
        ["bash", "-c", script, "bash", printed], capture_output=True, text=True, check=True
    ).stdout
    for secret in ("pgbouncer-s3cret", "redis-pw-123", "abcdefgh12345678", "p@ss:word-9"):
        assert secret not in out
    assert out.startswith("connecting to ***") and "abc stays" in out


@pytest.mark.parametrize("interval", [0, -5, "10s", 1.5, True])
def test_a_health_check_interval_that_is_not_whole_seconds_is_refused(interval):
    from galion.validators import run_checks

    problems = run_checks("h", data(apps_health_check_interval_seconds=interval), role.checks(apps))
    assert [p.key for p in problems] == ["apps_health_check_interval_seconds"]
    assert run_checks("h", data(apps_health_check_interval_seconds=None), role.checks(apps)) == []
