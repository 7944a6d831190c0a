"""A cloud image's first-login user (Ubuntu's "ubuntu"): the first run as that user
works, and once the deploy user is proven the image user is closed."""

import subprocess

import pytest

from sandbox.converge import converge
from tests.inventory import nodes

NODE = nodes()[0]
IMAGE_USER = "ubuntu"
SUDOERS = "/etc/sudoers.d/90-cloud-init-users"


def _ssh_as(user: str, sandbox_state) -> int:
    return subprocess.run(
        ["ssh", "-F", sandbox_state["ssh_config"], "-o", "ControlPath=none",
         f"{user}@{NODE.address}", "sudo", "-n", "true"],
        capture_output=True, timeout=60,
    ).returncode  # fmt: skip


@pytest.fixture
def image_user(sandbox_state):
    """The user a cloud image ships: the operator's key, passwordless sudo."""
    key = open(sandbox_state["operator_key"] + ".pub").read().strip()
    NODE.host.check_output(
        f"useradd -m -s /bin/bash {IMAGE_USER} && install -d -m 700 -o {IMAGE_USER} "
        f"/home/{IMAGE_USER}/.ssh && echo '{key}' > /home/{IMAGE_USER}/.ssh/authorized_keys && "
        f"chown {IMAGE_USER}: /home/{IMAGE_USER}/.ssh/authorized_keys && "
        f"echo '{IMAGE_USER} ALL=(ALL) NOPASSWD:ALL' > {SUDOERS} && chmod 440 {SUDOERS}"
    )
    yield
    NODE.host.run(f"userdel -r {IMAGE_USER}; rm -rf {SUDOERS} /var/tmp/galion-upload-{IMAGE_USER}")


@pytest.mark.once
def test_first_run_as_the_image_user_then_closed_once_deploy_is_proven(image_user, sandbox_state):
    assert _ssh_as(IMAGE_USER, sandbox_state) == 0
    as_image_user = converge("--data", f"ssh_user={IMAGE_USER}").check()
    assert not any("Close the image user" in c for c in as_image_user.changed)
    assert _ssh_as(IMAGE_USER, sandbox_state) == 0  # still its way in: deploy not proven yet

    as_deploy = converge().check()
    assert any(f"Close the image user {IMAGE_USER}" in c for c in as_deploy.changed)
    assert _ssh_as(IMAGE_USER, sandbox_state) != 0
    assert NODE.host.run(f"test -e {SUDOERS}").rc != 0
    assert _ssh_as(NODE.user, sandbox_state) == 0  # the deploy user still gets in
    assert converge().check().changed == []
