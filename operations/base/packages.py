"""apt: wait for its lock, then the packages the other steps configure."""

from pyinfra import host
from pyinfra.operations import apt

from galion.facts.files import PathExists
from galion.ops import config_file, render


def apt_lock_timeout():
    config_file(
        name="Wait for the apt lock instead of failing",
        dest="/etc/apt/apt.conf.d/90galion-lock-timeout",
        content=render(
            "base/etc/apt/apt.conf.d/90galion-lock-timeout.j2",
            timeout=host.data.base_apt_lock_timeout,
        ),
    )


def install():
    wanted = [
        "sudo",
        "openssh-server",
        "ufw",
        "fail2ban",
        "python3-systemd",
        "unattended-upgrades",
        "ca-certificates",
    ]
    if not host.get_fact(PathExists, path="/usr/sbin/chronyd"):
        wanted.append("systemd-timesyncd")
    if host.data.base_mail_relay:
        wanted.append("msmtp-mta")
    apt.packages(
        name="Install base packages",
        packages=wanted,
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
