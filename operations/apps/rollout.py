"""Which services galion-rollout updates on this host, and the call. The script decides
which container is live and whether the settings serve there (`galion-rollout status`,
read by the AppRolloutStatus fact); the converge only asks."""

import shlex
from pathlib import Path

from pyinfra import host

from galion.facts.docker import AppRolloutStatus
from galion.ops import SCRIPTS_DIR, one_host_at_a_time

STATE_DIR = "/var/lib/galion/apps"  # galion-rollout's markers of finished rollouts
ROLLOUT = f"{SCRIPTS_DIR}/galion-rollout"


def roll_out(data, wanted: dict[str, str], script: Path) -> None:
    """galion-rollout for every service whose settings do not serve yet, finished."""
    status = host.get_fact(
        AppRolloutStatus, script=str(script), settings=wanted, state_dir=STATE_DIR
    )
    outdated = []
    for service in data.apps_services:
        if status.get(service["name"], {}).get("up_to_date"):
            host.noop(f"{service['name']} runs {service['image']}")
            continue
        outdated.append(service)
    if outdated:
        # One app host at a time: while one switches (its nginx reloads, closing the
        # edge's idle connections), the others serve the edge's retries. Two hosts
        # switching at once gave 502s under load in a failover.
        # And none after one failed: a rollout that failed on the first app host is not
        # tried on the next.
        one_host_at_a_time(
            name="Roll out " + ", ".join(f"{s['name']} ({s['image']})" for s in outdated),
            command=rollout_command([s["name"] for s in outdated], data.apps_parallel_rollouts),
            key="apps rollout",
            _serial=True,
        )


def rollout_command(names: list[str], parallel: int) -> str:
    """Roll the services out, `parallel` at a time; fails if any rollout failed (each
    failure names its service)."""
    if len(names) == 1 or parallel == 1:
        return " && ".join(f"{ROLLOUT} {shlex.quote(n)}" for n in names)
    listed = " ".join(shlex.quote(n) for n in names)
    return f"printf '%s\\n' {listed} | xargs -P {parallel} -n 1 {ROLLOUT}"
