"""Operations that install files: validated config files, secret files, scripts, local
files, nginx's log files.

Why not files.template: with `--diff` pyinfra prints a file's old and new content
(twice), and cannot validate a staged copy before it replaces the live file. Here one
operation renders locally, compares hashes, uploads to a staged path, validates, and
only then moves the file into place atomically. Secret files are compared by hash
only and their content is never printed.

Each operation reads facts, then asks a pure function (plain values in, commands out)
what to do; those functions are what tests/unit/test_ops_files.py checks.
"""

import hashlib
import shlex
from pathlib import Path

from pyinfra import host, logger, state
from pyinfra.api import StringCommand, operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.facts.files import Directory, File, FileContents, Sha256File
from pyinfra.operations import files
from pyinfra.operations.util.files import generate_color_diff

from ..paths import SCRIPTS_DIR
from .uploads import private_upload_commands, sudo_upload_user, upload_temp_path


@operation()
def config_file(
    dest: str,
    content: str,
    user: str = "root",
    group: str = "root",
    mode: str = "644",
    secret: bool = False,
    validate: str | None = None,
    staged: str | None = None,
):
    """
    Install a file whose content is rendered locally, validated before it goes live.

    + dest: path of the live file
    + content: the wanted content (render it with ``render()``)
    + user/group/mode: ownership and permission bits of the live file
    + secret: never print the content or a diff, only that it changed
    + validate: shell command run against the staged file before the move; ``{staged}``
      is replaced by its path. On failure the staged file is removed and the run fails,
      so the next run validates again and the live file is untouched.
    + staged: staged path (default ``dest + ".galion-new"``); pick one that the
      program's include globs do not match

    **Example:**

    .. code:: python

        config_file(name="Install sudoers rule", dest="/etc/sudoers.d/90-deploy",
                    content=render("base/etc/sudoers.d/90-deploy.j2", user="deploy"),
                    mode="440", validate="visudo -cqf {staged}")
    """
    staged = staged or f"{dest}.galion-new"
    current_sha = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)

    action, fixes = config_file_action(dest, content, current_sha, info, user, group, mode)
    if action != "replace":
        yield from fixes
        if action == "up to date":
            host.noop(f"{dest} is up to date")
        return

    if secret:
        host.log(
            f"Will {'modify' if current_sha else 'create'} {dest} (secret: content not shown)",
            logger.info,
        )
    elif state.config.DIFF:
        current = host.get_fact(FileContents, path=dest) if current_sha else None
        host.log(f"Will {'modify' if current_sha else 'create'} {dest}", logger.info)
        old_lines = [line + "\n" for line in (current or [])]
        for line in generate_color_diff(old_lines, content.splitlines(keepends=True)):
            logger.info("  %s", line)
        logger.info("")

    parent_exists = bool(host.get_fact(Directory, path=str(Path(dest).parent)))
    yield from config_file_commands(
        dest, content, user, group, mode, validate, staged, parent_exists, sudo_upload_user()
    )


def shell_script(source: Path, title: str | None = None):
    """Install a role's bash script (files/<role>/NAME) as SCRIPTS_DIR/NAME, mode 755,
    checked by `bash -n` before it replaces the live one; returns the operation."""
    return config_file(
        name=title or f"Script {source.name}",
        dest=f"{SCRIPTS_DIR}/{source.name}",
        mode="755",
        content=source.read_text(),
        validate="bash -n {staged}",
    )


@operation()
def local_file(src: str, dest: str, mode: str = "600"):
    """
    Upload a file from the operator's machine (binary too, e.g. an image archive) when its
    hash differs; root-owned, never diffed, through a private temp path under sudo.

    + src: local path
    + dest: remote path (its directory must exist)
    + mode: permission bits
    """
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if host.get_fact(Sha256File, path=dest) == digest.hexdigest():
        host.noop(f"{dest} is up to date")
        return
    sudo_user = sudo_upload_user()
    staged = f"{dest}.galion-new"
    temp = None
    if sudo_user:
        temp = upload_temp_path(staged, sudo_user)
        yield StringCommand("install", "-d", "-m", "0700", "-o", sudo_user, str(Path(temp).parent))
    yield StringCommand("install", "-m", "0600", "-o", "root", "-g", "root", "/dev/null", staged)
    yield FileUploadCommand(src, staged, remote_temp_filename=temp)
    yield install_command(staged, dest, "root", "root", mode)


# Where nginx logs; the files our configs add are made like the package's own.
NGINX_LOG_DIR = "/var/log/nginx"


def nginx_log_files(names: list[str]):
    """Log files our nginx configs add, made before nginx opens them as Debian's package
    and logrotate make its own: www-data:adm 0640 (nginx, as root, would create them
    world-readable, and they hold client addresses and URLs)."""
    for name in names:
        files.file(
            name=f"{NGINX_LOG_DIR}/{name}: www-data:adm 0640, as nginx's own logs",
            path=f"{NGINX_LOG_DIR}/{name}",
            user="www-data",
            group="adm",
            mode="640",
        )


def config_file_action(
    dest: str,
    content: str,
    current_sha: str | None,
    info: dict | None,
    user: str,
    group: str,
    mode: str,
) -> tuple[str, list[StringCommand]]:
    """What `config_file` must do: ("up to date", []), ("fix", chown/chmod) or ("replace", [])."""
    if current_sha != hashlib.sha256(content.encode()).hexdigest():
        return "replace", []
    fixes = []
    # File's mode is the octal digits read as a decimal int (644).
    if info and (info["user"] != user or info["group"] != group):
        fixes.append(StringCommand("chown", f"{user}:{group}", dest))
    if info and info["mode"] != int(str(mode)):
        fixes.append(StringCommand("chmod", mode, dest))
    return ("fix" if fixes else "up to date"), fixes


def validate_command(validate: str, staged: str, dest: str) -> StringCommand:
    """Run `validate` on the staged file; on failure remove it and fail, live file untouched."""
    check = validate.replace("{staged}", shlex.quote(staged))
    return StringCommand(
        "sh",
        "-c",
        shlex.quote(
            f"if ! ( {check} ); then rm -f {shlex.quote(staged)}; "
            f"echo 'validation failed, live file untouched: {dest}' >&2; exit 1; fi"
        ),
    )


def install_command(staged: str, dest: str, user: str, group: str, mode: str) -> StringCommand:
    """Give the staged file its owner and mode, then move it onto the live file atomically."""
    return StringCommand(
        "sh",
        "-c",
        shlex.quote(
            f"chown {user}:{group} {shlex.quote(staged)} && chmod {mode} {shlex.quote(staged)} "
            f"&& mv -f {shlex.quote(staged)} {shlex.quote(dest)}"
        ),
    )


def config_file_commands(
    dest: str,
    content: str,
    user: str,
    group: str,
    mode: str,
    validate: str | None,
    staged: str,
    parent_exists: bool,
    sudo_user: str | None = None,
) -> list:
    """Commands that replace `dest`: parent dir, private upload to `staged`, validate, move."""
    commands = []
    parent = str(Path(dest).parent)
    if not parent_exists:
        commands.append(StringCommand("install", "-d", "-m", "0755", parent))
    # Owned by the live file's owner, who may have to read it to validate it.
    commands += private_upload_commands(content, staged, user, group, sudo_user)
    if validate:
        commands.append(validate_command(validate, staged, dest))
    commands.append(install_command(staged, dest, user, group, mode))
    return commands
