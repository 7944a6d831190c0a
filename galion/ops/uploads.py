"""Uploads no other user can read, not even for a moment: the commands the file and SQL
operations share."""

import hashlib
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import StringCommand
from pyinfra.api.command import FileUploadCommand


def sudo_upload_user() -> str | None:
    """The SSH user when this operation's uploads go through sudo or su, else None.

    pyinfra uploads as the SSH user to a temp file, then copies it with sudo; the default
    temp file in /tmp is world-readable for that moment.
    """
    args = host.current_op_global_arguments or {}
    if not (args.get("_sudo") or args.get("_su_user")):
        return None
    return host.data.get("ssh_user") or "root"


def upload_temp_path(dest: str, ssh_user: str) -> str:
    """A temp path for an upload to `dest` through sudo, in a directory only `ssh_user` enters."""
    name = hashlib.sha256(dest.encode()).hexdigest()[:16]
    return f"/var/tmp/galion-upload-{ssh_user}/{name}"


def private_upload_commands(
    content: str, path: str, user: str, group: str, sudo_user: str | None = None
) -> list:
    """Commands that upload `content` to `path` without it ever being readable by others.

    The file exists (0600, user:group) before any byte is written into it, since an upload
    into an existing file keeps its mode. `sudo_user` (the SSH user, when uploads go through
    sudo) sends the upload via a temp file in a directory only that user can enter.
    """
    commands = []
    temp = None
    if sudo_user:
        temp = upload_temp_path(path, sudo_user)
        commands.append(
            StringCommand("install", "-d", "-m", "0700", "-o", sudo_user, str(Path(temp).parent))
        )
    commands.append(
        StringCommand("install", "-m", "0600", "-o", user, "-g", group, "/dev/null", path)
    )
    commands.append(FileUploadCommand(StringIO(content), path, remote_temp_filename=temp))
    return commands
