"""Facts of Docker: the images on a host, the app services' containers and rollouts."""

import shlex
from pathlib import Path
from typing import ClassVar

from ._base import _Fact


class DockerImages(_Fact):
    """The names of the images on the host: `repository:tag`, and `repository@digest`
    for images pulled by digest (empty without Docker)."""

    required_command = "docker"
    default_value: ClassVar[set] = set()

    def command(self):
        return (
            "docker images --digests "
            "--format '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}'"
        )

    def process(self, output):
        names = set()
        for line in output:
            names.update(n for n in line.split() if not n.endswith(("<none>", ":")))
        return names


class AppRolloutStatus(_Fact):
    """Whether each app service runs the settings the converge is about to write, as
    galion-rollout decides it (`galion-rollout status`: the script alone knows which
    container is live): {service: {"up_to_date": bool, "live": the live container or
    None, "hash": its config hash or None, "finished": the hash of the service's last
    finished rollout (its marker) or None, "others": the service's other containers}}.

    `script`: the repository's galion-rollout, sent with the command: the copy on the
    host may be older (this is read before the upload) or absent (the first converge).
    `settings`: {service: the content of its settings file}. Without Docker (before the
    converge that installs it) nothing is live: every service is outdated. A Docker
    that does not answer fails the fact."""

    default_value: ClassVar[dict] = {}

    def command(self, script, settings, state_dir):
        asks = "".join(
            f"main status {shlex.quote(name)} <(printf %s {shlex.quote(text)})\n"
            for name, text in sorted(settings.items())
        )
        program = Path(script).read_text() + asks
        return (
            f"GALION_APPS_STATE_DIR={shlex.quote(state_dir)} "
            f"bash -c {shlex.quote(program)} galion-rollout"
        )

    def process(self, output):
        found = {}
        for line in output:
            service, verdict, *fields = line.split()
            values = {k: None if v == "-" else v for k, v in (f.split("=", 1) for f in fields)}
            found[service] = {
                "up_to_date": verdict == "up-to-date",
                "live": values["live"],
                "hash": values["hash"],
                "finished": values["finished"],
                "others": values["others"].split(",") if values["others"] else [],
            }
        return found


# Shared by the facts that read a cluster's data directory and pg_controldata.
_PSQL = "runuser -u postgres -- psql -X -At"
_SYSID = "sed -n 's/^Database system identifier: *//p'"
