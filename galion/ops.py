"""Custom operations: validated config files, secret files, sysctl values, UFW rules.

Why not files.template: with `--diff` pyinfra prints a file's old and new content
(twice), and cannot validate a staged copy before it replaces the live file. Here one
operation renders locally, compares hashes, uploads to a staged path, validates, and
only then moves the file into place atomically. Secret files are compared by hash
only and their content is never printed.

Each operation reads facts, then asks a pure function (plain values in, commands out)
what to do; those functions are what tests/unit/test_ops.py checks.
"""

import hashlib
import shlex
from io import StringIO
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host, logger, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.command import FileUploadCommand, FunctionCommand
from pyinfra.facts.files import Directory, File, FileContents, Sha256File
from pyinfra.operations import files
from pyinfra.operations.util.files import generate_color_diff

from .facts import SysctlState, UfwAddedRules, UfwStatus

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"

_jinja = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context) -> str:
    """Render a template under templates/ (StrictUndefined: a missing key is an error)."""
    return _jinja.get_template(template).render(**context)


def _sudo_upload_user() -> str | None:
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
        dest, content, user, group, mode, validate, staged, parent_exists, _sudo_upload_user()
    )


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


def sysctl_commands(
    values: dict[str, str | int], current: dict[str, dict]
) -> tuple[list[StringCommand], list[str]]:
    """`sysctl -w` for each key that differs and is writable; the others, with the reason."""
    commands, skipped = [], []
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
            commands.append(StringCommand("sysctl", "-q", "-w", f"{key}={want}"))
    return commands, skipped


@operation()
def sysctl_values(values: dict[str, str | int]):
    """
    Apply sysctl values live where the host allows it (the sysctl.d file makes them stick).

    Keys this host may not write (a container's kernel.*, vm.*, fs.*) are reported and
    skipped, not failed: their file stays in place for a real machine.

    + values: ``{key: value}``

    **Example:**

    .. code:: python

        sysctl_values(name="Apply sysctl values", values={"vm.swappiness": 10})
    """
    current = host.get_fact(SysctlState, keys=sorted(values))
    commands, skipped = sysctl_commands(values, current)
    yield from commands
    if skipped:
        host.log("sysctl skipped on this host: " + "; ".join(skipped), logger.warning)


def ufw_rule_opens(rule: str, port: int) -> bool:
    """Whether a rule (as `ufw show added` prints it) lets anyone in on this TCP port:
    `allow 22/tcp`, `limit 22/tcp`, `allow 22`; not `allow 2222/tcp`, and not a rule for
    some sources only (`allow from 10.0.22.0/24 ...`), which may not include the operator."""
    words = rule.split()
    return (
        len(words) >= 2
        and words[0] in ("allow", "limit")
        and words[1] in (f"{port}/tcp", str(port))
    )


def ufw_check_port(wanted: list[str], port: int | None) -> None:
    """Raise OperationError unless a rule in `wanted` opens `port` to everyone (if given):
    enabling UFW without it would lock the operator out."""
    if port is not None and not any(ufw_rule_opens(r, port) for r in wanted):
        raise OperationError(f"refusing to enable UFW without a rule for port {port}")


def ufw_commands(
    rules: list[str],
    prepend: list[str],
    present: list[str],
    status: dict,
    defaults: dict[str, str] | None,
) -> list[str]:
    """The ufw command lines that turn `present`/`status` into `prepend + rules`/`defaults`."""
    wanted = prepend + rules
    commands = [f"ufw prepend {rule}" for rule in prepend if rule not in present]
    commands += [f"ufw {rule}" for rule in rules if rule not in present]
    commands += [f"ufw delete {rule}" for rule in present if rule not in wanted]
    commands += [
        f"ufw default {policy} {direction}"
        for direction, policy in (defaults or {}).items()
        if status.get(direction) != policy
        # ufw says "disabled (routed)" on a host that forwards nothing (ip_forward=0):
        # as good as deny, and what it says again after `ufw default deny routed`.
        and not (direction == "routed" and policy == "deny" and status.get(direction) == "disabled")
    ]
    if not status.get("active"):
        commands.append("ufw --force enable")
    return commands


@operation()
def ufw_rules(
    rules: list[str],
    prepend: list[str] | None = None,
    defaults: dict[str, str] | None = None,
    must_allow_port: int | None = None,
):
    """
    Converge UFW to exactly these rules, then enable it.

    + rules: rules as ``ufw show added`` prints them, without "ufw ", in order
    + prepend: rules that go before all others (trusted sources before rate limits)
    + defaults: ``{"incoming": "deny", "outgoing": "allow", "routed": "deny"}``
    + must_allow_port: refuse to enable a firewall that does not let this port in
      (the SSH port: nothing locks the operator out)

    **Example:**

    .. code:: python

        ufw_rules(name="Firewall", rules=["allow 22/tcp"], must_allow_port=22)
    """
    prepend = prepend or []
    # Checked before any fact is read: a bad rule set fails without touching the host.
    ufw_check_port(prepend + rules, must_allow_port)
    present = host.get_fact(UfwAddedRules)
    status = host.get_fact(UfwStatus)
    yield from ufw_commands(rules, prepend, present, status, defaults)


SQL_DIR = "/var/lib/galion/sql"


def sql_file_path(sql: str, database: str) -> str:
    """Where `postgres_sql` uploads these statements (named by their hash)."""
    name = hashlib.sha256(f"{database}\0{sql}".encode()).hexdigest()[:16]
    return f"{SQL_DIR}/{name}.sql"


def run_sql_file_command(database: str, path: str) -> StringCommand:
    """Run the SQL file at `path` as postgres in one transaction, then remove it either way."""
    return StringCommand(
        "sh",
        "-c",
        shlex.quote(
            f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            f"-d {shlex.quote(database)} -f {path}; r=$?; rm -f {path}; exit $r"
        ),
    )


def postgres_sql_commands(sql: str, database: str, sudo_user: str | None = None) -> list:
    """Create the private SQL directory, upload the statements into it, run and remove them."""
    path = sql_file_path(sql, database)
    return [
        StringCommand("install", "-d", "-m", "0700", "-o", "postgres", "-g", "postgres", SQL_DIR),
        *private_upload_commands(sql, path, "postgres", "postgres", sudo_user),
        run_sql_file_command(database, path),
    ]


@operation(is_idempotent=False)
def postgres_sql(sql: str, database: str = "postgres", secret: bool = False):
    """
    Run SQL as the postgres superuser from an uploaded file, never from a command line.

    Command lines end up in `ps`, in sudo's journal entries and in pyinfra's output; the
    file is private (0600, postgres) and removed afterwards. Not idempotent: running it is
    always a change, so callers decide from facts whether the SQL is needed at all.

    + sql: the statements (run with ON_ERROR_STOP, in one transaction)
    + database: database to connect to
    + secret: the SQL holds a secret (a password verifier): never print it

    **Example:**

    .. code:: python

        postgres_sql(name="Create role app", sql="create role app login;")
    """
    if not secret and state.config.DIFF:
        host.log(f"Will run on {database}:", logger.info)
        for line in sql.strip().splitlines():
            logger.info("  %s", line)
    yield from postgres_sql_commands(sql, database, _sudo_upload_user())


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
    sudo_user = _sudo_upload_user()
    staged = f"{dest}.galion-new"
    temp = None
    if sudo_user:
        temp = upload_temp_path(staged, sudo_user)
        yield StringCommand("install", "-d", "-m", "0700", "-o", sudo_user, str(Path(temp).parent))
    yield StringCommand("install", "-m", "0600", "-o", "root", "-g", "root", "/dev/null", staged)
    yield FileUploadCommand(src, staged, remote_temp_filename=temp)
    yield install_command(staged, dest, "root", "root", mode)


# Where the roles' own programs go (root's PATH, outside any package's files).
SCRIPTS_DIR = "/usr/local/sbin"


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


# Hosts whose `one_host_at_a_time` command started in this run and has not finished (it
# failed, or is running), by the `key` the callers give.
_STARTED_NOT_DONE: dict[str, set[str]] = {}


def _start(name: str, host_name: str) -> None:
    failed = sorted(_STARTED_NOT_DONE.setdefault(name, set()))
    if failed:
        raise OperationError(
            f"not started here: it failed on {', '.join(failed)} first; this host keeps "
            "what it runs. Fix that host's failure, then converge again."
        )
    _STARTED_NOT_DONE[name].add(host_name)


def _done(name: str, host_name: str) -> None:
    _STARTED_NOT_DONE[name].discard(host_name)


@operation(is_idempotent=False)
def one_host_at_a_time(command: str, key: str):
    """
    Run `command` on each host in turn (call with _serial=True), and on no further host
    once it failed on one: a rollout that fails on the first app host is not tried on the
    next (pyinfra alone goes on with the other hosts).

    + command: the shell command
    + key: names this step across the hosts (the same on each)
    """
    yield FunctionCommand(_start, (key, host.name), {})
    yield command
    yield FunctionCommand(_done, (key, host.name), {})


def barrier(name: str) -> None:
    """A step that every host calling it from the same line reaches together.

    pyinfra orders each host's operations after its own earlier ones and joins the
    hosts' orders at an operation they share (the same stack of line numbers): every
    operation a host called before this line runs, on every host, before any host
    runs what it calls after it. Changes nothing."""
    files.directory(name=name, path="/", present=True)
