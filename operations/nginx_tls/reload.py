"""Every nginx file is checked by nginx -t (with the rest of the live config) before it
goes live; one reload takes all of a run's changes."""

from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from galion import commands
from galion.ops import config_file, restarts_after_crash


def nginx_file(name: str, dest: str, content: str):
    relative = dest[len("/etc/nginx/") :]
    return config_file(
        name=name, dest=dest, content=content, validate=commands.nginx_test_command(relative)
    )


def nginx(changed: list):
    """nginx runs, and reloads (nginx -t first) when any of `changed` changed."""
    restarts_after_crash("nginx", "nginx.service")
    systemd.service(name="nginx enabled and running", service="nginx", running=True, enabled=True)
    server.shell(
        name="Reload nginx (nginx -t first) if its config changed",
        commands=[commands.NGINX_RELOAD],
        _if=any_changed(*changed),
    )
