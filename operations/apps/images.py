"""Where the images come from: a private registry's login, or `docker save` archives
loaded when the host lacks an image (no registry needed)."""

import base64
import json
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

from galion import secrets
from galion.facts.docker import DockerImages
from galion.ops import config_file, local_file

IMAGES_DIR = "/var/lib/galion/images"


def registry_login():
    data = host.data
    if not data.apps_registry:
        return
    auth = base64.b64encode(
        f"{secrets.get('REGISTRY_USER')}:{secrets.get('REGISTRY_PASSWORD')}".encode()
    ).decode()
    files.directory(name="Docker client config directory", path="/root/.docker", mode="700")
    config_file(
        name=f"Registry login for {data.apps_registry} (secret)",
        dest="/root/.docker/config.json",
        mode="600",
        secret=True,
        content=json.dumps({"auths": {data.apps_registry: {"auth": auth}}}, indent=2) + "\n",
    )


def image_archives(services: list[dict]):
    """Load images from `docker save` archives for services that name one, when the
    host lacks the image (no registry needed)."""
    present = host.get_fact(DockerImages)
    archives = {s["image_archive"] for s in services if s.get("image_archive")}
    if not archives:
        return
    files.directory(name="Directory of image archives", path=IMAGES_DIR, mode="700")
    for archive in sorted(archives):
        wanted = [s["image"] for s in services if s.get("image_archive") == archive]
        if all(image in present for image in wanted):
            continue
        remote = f"{IMAGES_DIR}/{Path(archive).name}"
        local_file(
            name=f"Upload image archive {Path(archive).name}", src=archive, dest=remote, mode="600"
        )
        server.shell(
            name=f"Load images from {Path(archive).name}",
            commands=[f"docker load -q -i {shlex.quote(remote)}"],
        )
