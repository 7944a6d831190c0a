"""Logs: journald persistent and size-capped."""

from pyinfra import host
from pyinfra.operations import files, systemd

from galion.ops import config_file, render


def journald():
    conf = config_file(
        name="journald: persistent, size-capped",
        dest="/etc/systemd/journald.conf.d/90-galion.conf",
        content=render(
            "base/etc/systemd/journald.conf.d/90-galion.conf.j2",
            max_use=host.data.base_journald_max_use,
        ),
    )
    files.directory(
        name="Persistent journal directory",
        path="/var/log/journal",
        mode="2755",
        group="systemd-journal",
    )
    systemd.service(
        name="Restart journald if its config changed",
        service="systemd-journald",
        restarted=True,
        _if=conf.did_change,
    )
