"""Every long-running service comes back by itself after a crash (galion/ops/crash_restart.py,
the exporters' own policy, Docker's restart policy for the app containers).

Each service's main process is killed with SIGKILL, what the OOM killer sends, one at a
time on the converged single box: within 30 s it runs again with a new PID and answers
what it serves. Then a converge changes nothing: coming back needed no run."""

import shlex
import time

import pytest

from sandbox.converge import converge
from tests.inventory import nodes
from tests.roles.test_base import ssh_from_workstation
from tests.roles.test_nginx_tls import get

NODE = nodes()[0]
BACK_WITHIN = 30


def answers(command: str, expected: str = "") -> bool:
    # `|| exit 1`: testinfra takes exit 255 (fail2ban-client's "not running") for a lost
    # SSH connection and raises.
    result = NODE.host.run(f"{{ {command}; }} || exit 1")
    return result.rc == 0 and expected in result.stdout


def data(key: str):
    return NODE.data[key]


def edge_serves() -> bool:
    """A public name answers from the workstation, through nginx to an app."""
    try:
        return get(NODE, data("nginx_tls_vhosts")[0]["name"], "/health").status == 200
    except OSError:
        return False


# Each unit, and how to tell that it serves: the edge from outside, a login from the
# workstation, the others by the answer of their own client or ready page.
SERVICES = {
    "nginx": edge_serves,
    "postgresql@{major}-main": lambda: answers("runuser -u postgres -- psql -Atc 'select 1'", "1"),
    "pgbouncer": lambda: answers(
        f"pg_isready -h 127.0.0.1 -p {data('pgbouncer_port')}", "accepting connections"
    ),
    "redis-server": lambda: answers(f"redis-cli -p {data('redis_port')} ping 2>&1", "NOAUTH"),
    "docker": lambda: answers("docker info --format '{{.ServerVersion}}'", "."),
    "fail2ban": lambda: answers("fail2ban-client ping", "pong"),
    "ssh": lambda: ssh_from_workstation(NODE, data("base_deploy_user"), "true").returncode == 0,
    "prometheus": lambda: answers(
        f"curl -fsS http://127.0.0.1:{data('monitoring_prometheus_port')}/-/ready", "Ready"
    ),
    "prometheus-alertmanager": lambda: answers(
        f"curl -fsS http://127.0.0.1:{data('monitoring_alertmanager_port')}/-/ready", "OK"
    ),
    "prometheus-blackbox-exporter": lambda: answers(
        f"curl -fsS http://127.0.0.1:{data('monitoring_blackbox_port')}/metrics", "blackbox"
    ),
}


def unit_name(unit: str) -> str:
    major = NODE.host.check_output("pg_lsclusters --no-header | awk '{print $1}' | head -n 1")
    return unit.format(major=major)


def main_pid(unit: str) -> int:
    return int(NODE.host.check_output(f"systemctl show -p MainPID --value {shlex.quote(unit)}"))


def wait_for(condition, seconds: float = BACK_WITHIN) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return False


@pytest.mark.parametrize("unit", SERVICES)
def test_a_service_killed_like_the_oom_killer_does_comes_back_and_serves(unit):
    serves = SERVICES[unit]
    unit = unit_name(unit)
    assert serves(), f"{unit} does not serve before the test"
    before = main_pid(unit)
    assert before > 0, unit
    NODE.host.check_output(f"kill -KILL {before}")
    assert wait_for(lambda: main_pid(unit) not in (0, before) and serves()), (
        unit,
        NODE.host.run(f"systemctl status --no-pager -n 10 {shlex.quote(unit)}").stdout,
    )


def test_postgresql_stopped_cleanly_outside_systemd_stays_stopped():
    """galion-fence stops the primary with pg_ctl (a fast shutdown that lets the WAL
    senders finish), then masks the unit: no restart may come in between."""
    unit = unit_name("postgresql@{major}-main")
    major = unit.split("@")[1].split("-")[0]
    data_dir = f"/var/lib/postgresql/{major}/main"
    try:
        NODE.host.check_output(
            f"runuser -u postgres -- /usr/lib/postgresql/{major}/bin/pg_ctl -D {data_dir} "
            "-m fast -w -t 60 stop"
        )
        # Beyond RestartSec (2 s): a restart would have come by now.
        time.sleep(6)
        assert NODE.host.run(f"systemctl is-active --quiet {unit}").rc != 0
        assert not SERVICES["postgresql@{major}-main"]()
    finally:
        NODE.host.run(f"systemctl reset-failed {unit}; systemctl start {unit}")
    assert wait_for(SERVICES["postgresql@{major}-main"])


def test_a_service_that_keeps_crashing_is_given_up_and_reported_failed():
    """The start limit: killed again at each start, fail2ban is left failed after five
    starts, and node_exporter reports it so (ServiceFailed's series); a person's
    `systemctl reset-failed` and start bring it back."""
    unit = "fail2ban"
    state = (
        f"curl -fsS http://127.0.0.1:{data('node_exporter_port')}/metrics | "
        f'grep \'^node_systemd_unit_state{{name="{unit}.service",state="failed"\''
    )
    assert NODE.host.check_output(state).endswith(" 0")
    try:
        for _ in range(8):
            pid = main_pid(unit)
            if pid:
                NODE.host.run(f"kill -KILL {pid}")
            if NODE.host.run(f"systemctl is-failed --quiet {unit}").rc == 0:
                break
            wait_for(lambda p=pid: main_pid(unit) not in (0, p), seconds=10)
        assert NODE.host.run(f"systemctl is-failed --quiet {unit}").rc == 0
        assert wait_for(lambda: NODE.host.check_output(state).endswith(" 1"), seconds=10)
    finally:
        NODE.host.run(f"systemctl reset-failed {unit}; systemctl start {unit}")
    assert wait_for(SERVICES[unit])


def live_health(service: dict) -> bool:
    port = data("nginx_tls_upstream_ports")[service["upstream"]]
    slots = (port, port + data("apps_alternate_port_offset"))
    return any(answers(f"curl -fsS -m 3 http://127.0.0.1:{p}/health", "ok") for p in slots)


def test_an_app_container_killed_like_the_oom_killer_does_comes_back_and_serves():
    service = data("apps_services")[0]
    container = NODE.host.check_output(
        f"docker ps -q --filter label=galion.service={service['name']}"
    ).split()
    assert len(container) == 1, container
    inspect = "docker inspect -f '{{.State.Pid}} {{.RestartCount}}' " + container[0]
    pid, restarts = NODE.host.check_output(inspect).split()
    assert live_health(service)
    NODE.host.check_output(f"kill -KILL {pid}")

    def back() -> bool:
        now_pid, now_restarts = NODE.host.check_output(inspect).split()
        return now_pid not in ("0", pid) and int(now_restarts) > int(restarts)

    assert wait_for(lambda: back() and live_health(service)), service["name"]


def test_after_the_crashes_a_converge_changes_nothing():
    assert converge().check().changed == []
