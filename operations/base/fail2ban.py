"""fail2ban: the sshd jail on the journal, with bans that grow on repeat offences."""

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from galion import commands
from galion.ops import config_file, render


def sshd_jail():
    data = host.data
    jail = config_file(
        name="fail2ban: sshd jail on the journal, incremental bans",
        dest="/etc/fail2ban/jail.local",
        content=render(
            "base/etc/fail2ban/jail.local.j2",
            bantime=data.base_fail2ban_bantime,
            bantime_max=data.base_fail2ban_bantime_max,
            findtime=data.base_fail2ban_findtime,
            maxretry=data.base_fail2ban_maxretry,
            ignoreip=data.base_fail2ban_ignoreip,
            ssh_port=data.base_ssh_port,
        ),
        validate=commands.fail2ban_jail_test("jail.local"),
    )
    # Where these settings lived before (jail.d would override jail.local).
    old = files.file(
        name="fail2ban: no jail.d/galion.local (moved to jail.local)",
        path="/etc/fail2ban/jail.d/galion.local",
        present=False,
    )
    systemd.service(
        name="fail2ban running and enabled", service="fail2ban", running=True, enabled=True
    )
    systemd.service(
        name="Reload fail2ban if its jail changed",
        service="fail2ban",
        reloaded=True,
        _if=any_changed(jail, old),
    )
