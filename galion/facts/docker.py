"""Facts of Docker: the images on a host, the app services' containers and rollouts."""

import shlex
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


class AppContainers(_Fact):
    """(containers, live ports, finished): the app services' containers by name, each
    {"running": bool, "hash": its galion.config-hash label}; the port each nginx
    upstream's servers file points at, by upstream name; and the config hash of each
    service's last finished rollout (galion-rollout's markers), by service name."""

    default_value: ClassVar[tuple] = ({}, {}, {})

    def command(self, servers_dir, state_dir):
        d, m = shlex.quote(servers_dir), shlex.quote(state_dir)
        return (
            f'for f in {d}/*.servers; do [ -e "$f" ] || continue; '
            "p=$(sed -n 's/^server [^ ]*:\\([0-9][0-9]*\\)[ ;].*/\\1/p' \"$f\" | head -n 1); "
            'echo "servers $(basename "$f" .servers) $p"; done; '
            f'for f in {m}/*.live; do [ -e "$f" ] || continue; '
            'echo "finished $(basename "$f" .live) $(cut -d " " -f 1 "$f")"; done; '
            "if command -v docker >/dev/null; then docker ps -a --filter label=galion.service "
            "--format 'container {{.Names}} {{.State}} {{.Label \"galion.config-hash\"}}'; fi"
        )

    def process(self, output):
        containers, ports, finished = {}, {}, {}
        for line in output:
            parts = line.split()
            if parts[:1] == ["servers"] and len(parts) == 3 and parts[2].isdigit():
                ports[parts[1]] = int(parts[2])
            elif parts[:1] == ["finished"] and len(parts) == 3:
                finished[parts[1]] = parts[2]
            elif parts[:1] == ["container"] and len(parts) >= 3:
                containers[parts[1]] = {
                    "running": parts[2] == "running",
                    "hash": parts[3] if len(parts) > 3 else "",
                }
        return containers, ports, finished
