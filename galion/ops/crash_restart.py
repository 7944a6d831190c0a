"""A long-running service the distro ships comes back by itself after a crash.

Debian's units for nginx, PostgreSQL and PgBouncer have no restart policy: a crash or an
OOM kill was an outage until a person came. Each role gives every service it runs this
drop-in (the exporters have their own, galion/exporters.py: they restart always, since
they only read).
"""

from pyinfra.operations import systemd

from .files import config_file

# on-failure: a crash, a signal (SIGKILL is what the OOM killer sends) or a watchdog
# timeout, never a clean stop: `systemctl stop`, galion-fence's mask and a restore's stop
# stay stopped. Five failed starts in two minutes and systemd gives up: the unit reads
# "failed" and the service's down alert fires, rather than it spinning on a broken config
# (a bad config cannot reach a host: every one is validated before it is written).
CRASH_RESTART_DROPIN = """# Managed by galion-infra (galion/ops/crash_restart.py).
[Unit]
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
Restart=on-failure
RestartSec=2
"""

# The units the roles give this policy (a unit test finds every call and checks it is
# here). node_exporter reports their state, and a unit systemd gave up on, "failed",
# fires ServiceFailed: for sshd, fail2ban and Docker the only alert that it stays down.
UNITS = (
    "nginx.service",
    "postgresql@.service",
    "pgbouncer.service",
    "redis-server.service",
    "docker.service",
    "fail2ban.service",
    "ssh.service",
    "prometheus.service",
    "prometheus-alertmanager.service",
)


def units_pattern() -> str:
    """UNITS as the regular expression node_exporter's systemd collector takes (its
    names are instances: a template matches each of them, postgresql@15-main.service)."""
    names = [u.replace(".", "\\.").replace("@\\.", "@[^.]+\\.") for u in UNITS]
    return "(" + "|".join(names) + ")"


def restarts_after_crash(title: str, unit: str, service_lines: tuple[str, ...] = ()):
    """
    Give `unit` the restart policy above; systemd reads it at once (no restart: the
    running service keeps serving, the policy holds for its next exit).

    + title: the service, for the operation names ("nginx")
    + unit: the unit file it applies to ("nginx.service", "postgresql@.service": every
      cluster of a template)
    + service_lines: more [Service] lines the unit needs for the policy to hold
    """
    dropin = config_file(
        name=f"{title} restarts after a crash",
        dest=f"/etc/systemd/system/{unit}.d/galion-restart.conf",
        content=CRASH_RESTART_DROPIN + "".join(f"{line}\n" for line in service_lines),
    )
    systemd.daemon_reload(name=f"systemd reads {title}'s restart policy", _if=dropin.did_change)
