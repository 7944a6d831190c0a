"""fail2ban's jails for nginx: 429 floods (limit-req) and vulnerability scans (botsearch)."""

from pyinfra import host
from pyinfra.operations import systemd

from galion import commands
from galion.ops import config_file, render


def jails():
    jail = config_file(
        name="fail2ban jails for nginx (limit-req, botsearch)",
        dest="/etc/fail2ban/jail.d/galion-nginx.local",
        content=render(
            "nginx_tls/etc/fail2ban/galion-nginx.local.j2",
            bantime=host.data.nginx_tls_fail2ban_bantime,
            bantime_max=host.data.nginx_tls_fail2ban_bantime_max,
        ),
        validate=commands.fail2ban_jail_test("jail.d/galion-nginx.local"),
    )
    systemd.service(
        name="Reload fail2ban for the nginx jails",
        service="fail2ban",
        reloaded=True,
        _if=jail.did_change,
    )
