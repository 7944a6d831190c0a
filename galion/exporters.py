"""A Prometheus exporter from the distro, the way every role that has one installs it:
the Debian package, its /etc/default file (listen address, flags, environment), a
restart only when that file changed, and a check that it came back up.

Every Debian exporter package runs `/usr/bin/<package> $ARGS` as user prometheus with
EnvironmentFile=/etc/default/<package>, so one helper fits node, postgres, redis,
nginx and blackbox exporters alike. Where they listen comes from galion/topology.py:
loopback on the single box, the private address when a monitoring host scrapes them.
"""

import shlex
from pathlib import Path

from pyinfra.operations import apt, server, systemd
from pyinfra.operations.util import any_changed

from .ops import config_file, shell_script

# node_exporter's textfile directory (Debian's default): backups, containers and nginx's
# request metrics are written here.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


def default_file(args: list[str], environment: dict[str, str] | None = None) -> str:
    """The /etc/default file: environment lines, then ARGS (systemd's quoting)."""
    lines = ["# Managed by galion-infra (galion/exporters.py)."]
    for key, value in (environment or {}).items():
        lines.append(f"{key}={shlex.quote(value)}")
    lines.append(f"ARGS={shlex.quote(' '.join(args))}")
    return "\n".join(lines) + "\n"


# Debian's exporter units restart only on failure and give up after a few quick tries:
# the nginx exporter, started before nginx at boot, exits and stays down. Always
# restart, never give up.
RESTART_DROPIN = """# Managed by galion-infra (galion/exporters.py).
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec=5
"""


def restart_command(unit: str) -> str:
    """Debian starts an exporter at install with its empty default settings; some exit at
    once (no DSN) until systemd stops trying ("start request repeated too quickly"):
    forget those failures, then restart with ours."""
    u = shlex.quote(unit)
    return f"systemctl reset-failed {u} 2>/dev/null; systemctl restart {u}"


def started_check(unit: str) -> str:
    """After a restart: the unit is still active a moment later (a bad flag makes an
    exporter exit at once), else its last log lines and a failed run."""
    u = shlex.quote(unit)
    return (
        f"sleep 1; systemctl is-active --quiet {u} || "
        f"{{ journalctl -u {u} -n 5 --no-pager -o cat >&2; echo '{unit} did not start' >&2; "
        "exit 1; }"
    )


def exporter(
    title: str,
    package: str,
    args: list[str],
    environment: dict[str, str] | None = None,
    secret: bool = False,
    restart_if=None,
):
    """
    Install and run one exporter from its Debian package.

    + title: what it exports, for the operation names ("PostgreSQL exporter")
    + package: the Debian package, also the unit's and the /etc/default file's name
    + args: its command line flags (the listen address among them)
    + environment: variables for it (a DSN, a password); `secret` keeps them out of diffs
      and the file root-only
    + restart_if: also restart when this returns True (its own config file changed)
    """
    apt.packages(
        name=f"Install the {title}",
        packages=[package],
        no_recommends=True,
        update=True,
        cache_time=3600,
    )
    conf = config_file(
        name=f"{title}: flags" + (" and credentials (secret)" if secret else ""),
        dest=f"/etc/default/{package}",
        mode="600" if secret else "644",
        secret=secret,
        content=default_file(args, environment),
    )
    dropin = config_file(
        name=f"{title}: restarted whenever it stops",
        dest=f"/etc/systemd/system/{package}.service.d/galion-restart.conf",
        content=RESTART_DROPIN,
    )
    systemd.daemon_reload(name=f"systemd reads the {title}'s restart policy", _if=dropin.did_change)
    changed = lambda: conf.did_change() or bool(restart_if and restart_if())  # noqa: E731
    server.shell(
        name=f"Restart the {title} (its settings changed)",
        commands=[restart_command(package)],
        _if=changed,
    )
    server.shell(name=f"The {title} came back up", commands=[started_check(package)], _if=changed)
    systemd.service(name=f"The {title} runs at boot", service=package, running=True, enabled=True)


def textfile_collector(name: str, files: Path, service: str | None = None):
    """
    A script that writes metrics into TEXTFILE_DIR, run by a systemd timer: for what has
    no Debian exporter (containers, nginx's access log, PgBouncer's pools).

    + name: the script's and the units' name (galion-nginx-metrics)
    + files: the role's files/ directory, holding NAME (the script, installed as
      /usr/local/sbin/NAME after bash -n) and NAME.timer (and NAME.service)
    + service: NAME.service's content when the role renders it (its arguments)
    """
    shell_script(files / name)
    contents = {
        "service": service if service is not None else (files / f"{name}.service").read_text(),
        "timer": (files / f"{name}.timer").read_text(),
    }
    units = [
        config_file(
            name=f"Unit {name}.{kind}", dest=f"/etc/systemd/system/{name}.{kind}", content=c
        )
        for kind, c in contents.items()
    ]
    systemd.daemon_reload(name=f"systemd reads the {name} units", _if=any_changed(*units))
    systemd.service(
        name=f"{name}.timer restarted (its units changed)",
        service=f"{name}.timer",
        restarted=True,
        _if=any_changed(*units),
    )
    systemd.service(
        name=f"{name}.timer enabled and waiting",
        service=f"{name}.timer",
        running=True,
        enabled=True,
    )
