"""Custom operations: validated config files, secret files, sysctl values, UFW rules.

Why not files.template: with `--diff` pyinfra prints a file's old and new content
(twice), and cannot validate a staged copy before it replaces the live file. Here one
operation renders locally, compares hashes, uploads to a staged path, validates, and
only then moves the file into place atomically. Secret files are compared by hash
only and their content is never printed.
"""

import hashlib
import shlex
from io import StringIO
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host, logger, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.facts.files import Directory, File, FileContents, Sha256File
from pyinfra.operations.util.files import generate_color_diff

from .facts import SysctlState, UfwAddedRules, UfwStatus

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"

_jinja = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                     keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    """Render a template under templates/ (StrictUndefined: a missing key is an error)."""
    return _jinja.get_template(template).render(**context)


def _upload_temp_path(dest: str) -> str | None:
    """A temp path only the SSH user can read, for uploads that go through sudo.

    pyinfra uploads as the SSH user to a temp file, then copies it with sudo; the default
    temp file in /tmp is world-readable for that moment.
    """
    args = host.current_op_global_arguments or {}
    if not (args.get("_sudo") or args.get("_su_user")):
        return None
    ssh_user = host.data.get("ssh_user") or "root"
    name = hashlib.sha256(dest.encode()).hexdigest()[:16]
    return f"/var/tmp/galion-upload-{ssh_user}/{name}"


def _private_upload(content: str, path: str, user: str, group: str):
    """Commands that upload `content` to `path` without it ever being readable by others.

    The file exists (0600, user:group) before any byte is written into it, since an upload
    into an existing file keeps its mode; through sudo the upload goes via a temp file in
    a directory only the SSH user can enter.
    """
    temp = _upload_temp_path(path)
    if temp:
        ssh_user = host.data.get("ssh_user") or "root"
        yield StringCommand("install", "-d", "-m", "0700", "-o", ssh_user, str(Path(temp).parent))
    yield StringCommand("install", "-m", "0600", "-o", user, "-g", group, "/dev/null", path)
    yield FileUploadCommand(StringIO(content), path, remote_temp_filename=temp)


@operation()
def config_file(dest: str, content: str, user: str = "root", group: str = "root",
                mode: str = "644", secret: bool = False, validate: str | None = None,
                staged: str | None = None):
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
    wanted_sha = hashlib.sha256(content.encode()).hexdigest()
    current_sha = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)

    if current_sha == wanted_sha:
        # File's mode is the octal digits read as a decimal int (644).
        if info and info["user"] != user or info and info["group"] != group:
            yield StringCommand("chown", f"{user}:{group}", dest)
        if info and info["mode"] != int(str(mode)):
            yield StringCommand("chmod", mode, dest)
        if not info or (info["user"], info["group"], info["mode"]) == (user, group, int(str(mode))):
            host.noop(f"{dest} is up to date")
        return

    if secret:
        host.log(f"Will {'modify' if current_sha else 'create'} {dest} "
                 "(secret: content not shown)", logger.info)
    elif state.config.DIFF:
        current = host.get_fact(FileContents, path=dest) if current_sha else None
        host.log(f"Will {'modify' if current_sha else 'create'} {dest}", logger.info)
        old_lines = [line + "\n" for line in (current or [])]
        for line in generate_color_diff(old_lines, content.splitlines(keepends=True)):
            logger.info("  %s", line)
        logger.info("")

    parent = str(Path(dest).parent)
    if not host.get_fact(Directory, path=parent):
        yield StringCommand("install", "-d", "-m", "0755", parent)
    # Owned by the live file's owner, who may have to read it to validate it.
    yield from _private_upload(content, staged, user, group)
    if validate:
        check = validate.replace("{staged}", shlex.quote(staged))
        yield StringCommand("sh", "-c", shlex.quote(
            f"if ! ( {check} ); then rm -f {shlex.quote(staged)}; "
            f"echo 'validation failed, live file untouched: {dest}' >&2; exit 1; fi"))
    yield StringCommand(
        "sh", "-c", shlex.quote(
            f"chown {user}:{group} {shlex.quote(staged)} && chmod {mode} {shlex.quote(staged)} "
            f"&& mv -f {shlex.quote(staged)} {shlex.quote(dest)}"))


@operation()
def sysctl_values(values: dict[str, str | int]):
    """
    Apply sysctl values live where the host allows it (the sysctl.d file makes them stick).

    Keys this host may not write (a container's kernel.*, vm.*, fs.*) are reported and
    skipped, not failed: their file stays in place for a real machine.

    + values: ``{key: value}``
    """
    current = host.get_fact(SysctlState, keys=sorted(values))
    skipped = []
    for key, value in sorted(values.items()):
        want = " ".join(str(value).split())
        have = current.get(key, {})
        if have.get("value") == want:
            continue
        if have.get("value") is None:
            skipped.append(f"{key} (absent)")
        elif not have.get("writable"):
            skipped.append(f"{key} (read-only here: {have['value']}, wanted {want})")
        else:
            yield StringCommand("sysctl", "-q", "-w", f"{key}={want}")
    if skipped:
        host.log("sysctl skipped on this host: " + "; ".join(skipped), logger.warning)


@operation()
def ufw_rules(rules: list[str], prepend: list[str] | None = None,
              defaults: dict[str, str] | None = None, must_allow_port: int | None = None):
    """
    Converge UFW to exactly these rules, then enable it.

    + rules: rules as ``ufw show added`` prints them, without "ufw ", in order
    + prepend: rules that go before all others (trusted sources before rate limits)
    + defaults: ``{"incoming": "deny", "outgoing": "allow", "routed": "deny"}``
    + must_allow_port: refuse to enable a firewall that does not let this port in
      (the SSH port: nothing locks the operator out)
    """
    prepend = prepend or []
    wanted = prepend + rules
    if must_allow_port is not None and not any(
            str(must_allow_port) in r and r.split()[0] in ("allow", "limit") for r in wanted):
        raise OperationError(f"refusing to enable UFW without a rule for port {must_allow_port}")
    present = host.get_fact(UfwAddedRules)
    status = host.get_fact(UfwStatus)
    for rule in prepend:
        if rule not in present:
            yield f"ufw prepend {rule}"
    for rule in rules:
        if rule not in present:
            yield f"ufw {rule}"
    for rule in present:
        if rule not in wanted:
            yield f"ufw delete {rule}"
    for direction, policy in (defaults or {}).items():
        if status.get(direction) != policy:
            yield f"ufw default {policy} {direction}"
    if not status.get("active"):
        yield "ufw --force enable"


SQL_DIR = "/var/lib/galion/sql"


@operation()
def postgres_sql(sql: str, database: str = "postgres", secret: bool = False):
    """
    Run SQL as the postgres superuser from an uploaded file, never from a command line.

    Command lines end up in `ps`, in sudo's journal entries and in pyinfra's output; the
    file is private (0600, postgres) and removed afterwards. Callers decide from facts
    whether the SQL is needed at all, so running it is always a change.

    + sql: the statements (run with ON_ERROR_STOP, in one transaction)
    + database: database to connect to
    + secret: the SQL holds a secret (a password verifier): never print it
    """
    if not secret and state.config.DIFF:
        host.log(f"Will run on {database}:", logger.info)
        for line in sql.strip().splitlines():
            logger.info("  %s", line)
    name = hashlib.sha256(f"{database}\0{sql}".encode()).hexdigest()[:16]
    path = f"{SQL_DIR}/{name}.sql"
    yield StringCommand("install", "-d", "-m", "0700", "-o", "postgres", "-g", "postgres", SQL_DIR)
    yield from _private_upload(sql, path, "postgres", "postgres")
    yield StringCommand("sh", "-c", shlex.quote(
        f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
        f"-d {shlex.quote(database)} -f {path}; r=$?; rm -f {path}; exit $r"))
