"""Time: systemd-timesyncd, unless chrony already keeps time."""

from pyinfra import host
from pyinfra.operations import systemd

from galion.facts.files import PathExists
from galion.facts.system import in_container


def time_sync():
    if host.get_fact(PathExists, path="/usr/sbin/chronyd"):
        return  # chrony already keeps time; two NTP clients would fight
    # In a container the clock is the machine's: timesyncd's unit skips itself there
    # (ConditionVirtualization=!container), so only ask it to run on a real host.
    systemd.service(
        name="Time sync (systemd-timesyncd)",
        service="systemd-timesyncd",
        enabled=True,
        running=None if in_container() else True,
    )
