"""Unattended upgrades: daily, with reports by mail (if relayed) and reboots if wanted."""

from pyinfra import host

from galion.ops import config_file, render


def unattended_upgrades():
    data = host.data
    validate = "apt-config -c {staged} dump >/dev/null"
    config_file(
        name="Unattended upgrades: daily",
        dest="/etc/apt/apt.conf.d/20auto-upgrades",
        content=render("base/etc/apt/apt.conf.d/20auto-upgrades.j2"),
        validate=validate,
    )
    config_file(
        name="Unattended upgrades: reports and reboots",
        dest="/etc/apt/apt.conf.d/52galion-unattended-upgrades",
        content=render(
            "base/etc/apt/apt.conf.d/52galion-unattended-upgrades.j2",
            mail=data.operator_email if data.base_mail_relay else "",
            reboot=data.base_unattended_reboot,
            reboot_time=data.base_unattended_reboot_time,
        ),
        validate=validate,
    )
