"""galion.facts.docker: images, the app services' containers.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

from galion.facts import docker
from galion.facts import docker as docker_facts  # a test's `docker` flag hides the module
from tests import rollout_rig
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


@covers(docker_facts.AppRolloutStatus)
class TestAppRolloutStatus:
    def _ask(self, rig, settings, docker=True):
        """Run the command for real as pyinfra would (sh), with the rig's stand-in docker."""
        if not docker:
            (rig.root / "bin" / "docker").unlink()
        command = docker_facts.AppRolloutStatus().command(
            str(rollout_rig.ROLLOUT), settings, str(rig.root / "state")
        )
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=rig.env())

    def test_command_asks_galion_rollout_about_the_settings_it_will_write(self, tmp_path):
        """galion-api finished its rollout in slot b; studio-api has only a stopped
        container. No settings file on the host: the fact reads those it is given."""
        rig = rollout_rig.Rig(tmp_path)
        (rig.root / "conf" / "galion-api.conf").unlink()
        rig.image("app:v2")
        rig.container("b", "running", "newhash", 18001, "app:v2")
        rig.container("a", "exited", "x", 8002, "app:v1", service="studio-api")
        rig.nginx_points_at(18001)
        rig.finished("newhash", "b")
        studio = rollout_rig.settings(
            rig, UPSTREAM="studio_api", SERVERS_FILE=tmp_path / "studio_api.servers"
        )
        out = self._ask(rig, {"galion-api": rollout_rig.settings(rig), "studio-api": studio})
        assert out.returncode == 0, out.stderr
        assert docker_facts.AppRolloutStatus().process(out.stdout.splitlines()) == {
            "galion-api": {
                "up_to_date": True,
                "live": "galion-api-b",
                "hash": "newhash",
                "finished": "newhash",
                "others": [],
            },
            "studio-api": {
                "up_to_date": False,
                "live": None,
                "hash": None,
                "finished": None,
                "others": ["studio-api-a"],
            },
        }
        # Read-only: it asked docker for the list, nothing else.
        assert {c.split()[1] for c in rig.calls()} == {"ps"}

    def test_before_docker_is_installed_nothing_is_up_to_date(self, tmp_path):
        rig = rollout_rig.Rig(tmp_path)
        rig.nginx_points_at(18001)
        rig.finished("newhash", "b")
        out = self._ask(rig, {"galion-api": rollout_rig.settings(rig)}, docker=False)
        assert out.returncode == 0, out.stderr
        status = docker_facts.AppRolloutStatus().process(out.stdout.splitlines())
        assert status["galion-api"]["up_to_date"] is False

    def test_a_docker_that_does_not_answer_fails_the_fact(self, tmp_path):
        rig = rollout_rig.Rig(tmp_path)
        (rig.stub / "docker-down").write_text("")
        assert self._ask(rig, {"galion-api": rollout_rig.settings(rig)}).returncode != 0

    def test_process(self):
        out = [
            "galion-api up-to-date live=galion-api-b hash=0123456789abcdef "
            "finished=0123456789abcdef others=-",
            "studio-api outdated live=studio-api-a hash=89abcdef01234567 "
            "finished=0123456789abcdef others=studio-api-b",
        ]
        status = docker_facts.AppRolloutStatus().process(out)
        assert status["galion-api"]["up_to_date"] is True
        assert status["galion-api"]["others"] == []
        assert status["studio-api"] == {
            "up_to_date": False,
            "live": "studio-api-a",
            "hash": "89abcdef01234567",
            "finished": "0123456789abcdef",
            "others": ["studio-api-b"],
        }

    def test_default_is_no_service(self):
        assert docker_facts.AppRolloutStatus().default() == {}
