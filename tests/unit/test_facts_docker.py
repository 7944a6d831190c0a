"""galion.facts.docker: images, the app services' containers.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

from galion.facts import docker
from tests.unit.fact_coverage import covers


@covers(docker.DockerImages)
class TestDockerImages:
    def test_needs_docker_and_defaults_to_no_image(self):
        assert docker.DockerImages().requires_command() == "docker"
        assert docker.DockerImages().default() == set()

    def test_process(self):
        digest = "sha256:" + "ab" * 32
        out = [
            "galion-test-app:v1 galion-test-app@<none>",
            f"ghcr.io/galion-app/galion-api:1.0.0 ghcr.io/galion-app/galion-api@{digest}",
            f"ghcr.io/galion-app/galion-voice:<none> ghcr.io/galion-app/galion-voice@{digest}",
            "",
        ]
        assert docker.DockerImages().process(out) == {
            "galion-test-app:v1",
            "ghcr.io/galion-app/galion-api:1.0.0",
            f"ghcr.io/galion-app/galion-api@{digest}",
            f"ghcr.io/galion-app/galion-voice@{digest}",
        }


@covers(docker.AppContainers)
class TestAppContainers:
    def test_command_reads_the_live_port_of_each_servers_file(self, tmp_path):
        # Run for real in a shell: no docker here, so only the servers files answer.
        (tmp_path / "galion_api.servers").write_text(
            "# Managed by galion-rollout\nserver 127.0.0.1:18001 max_fails=0;\n"
        )
        (tmp_path / "studio_api.servers").write_text(
            "server 127.0.0.1:8003 max_fails=3 fail_timeout=10s;\n"
        )
        (tmp_path / "empty.servers").write_text("")
        state = tmp_path / "state"
        state.mkdir()
        (state / "galion-api.live").write_text("0123456789abcdef galion-api-b\n")
        command = docker.AppContainers().command(str(tmp_path), str(state))
        env = {"PATH": "/usr/bin:/bin"}  # no docker on this PATH
        out = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, check=True, env=env
        )
        assert docker.AppContainers().process(out.stdout.splitlines()) == (
            {},
            {"galion_api": 18001, "studio_api": 8003},
            {"galion-api": "0123456789abcdef"},
        )

    def test_process_containers(self):
        out = [
            "servers galion_api 8001",
            "container galion-api-a running 0123456789abcdef",
            "container galion-api-b exited 89abcdef01234567",
            "container studio-api-a created",
            "finished galion-api 0123456789abcdef",
        ]
        containers, ports, finished = docker.AppContainers().process(out)
        assert ports == {"galion_api": 8001}
        assert finished == {"galion-api": "0123456789abcdef"}
        assert containers == {
            "galion-api-a": {"running": True, "hash": "0123456789abcdef"},
            "galion-api-b": {"running": False, "hash": "89abcdef01234567"},
            "studio-api-a": {"running": False, "hash": ""},
        }

    def test_default_is_no_container_and_no_port(self):
        assert docker.AppContainers().default() == ({}, {}, {})
