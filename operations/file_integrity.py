"""File integrity monitoring with AIDE, on every host: a baseline of the system's files
made once, at the end of the first converge, and the distro's daily check against it
(its report goes to root's mail). Data directories that change by design are left out.
After a change you made on purpose, `sudo aideinit -y -f` takes a new baseline."""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.operations import apt, files, server

from galion.facts.files import PathExists
from galion.ops import config_file, render
from galion.role import Knob, Role

AIDE_DB = "/var/lib/aide/aide.db"
AIDE_CONF = "/etc/aide/aide.conf"
# The hashes AIDE_DB was recorded with, written once a baseline succeeded.
BASELINE_HASHES = "/var/lib/aide/galion-baseline-hashes"
# aide.conf includes aide.conf.d files whose names match ^[a-zA-Z0-9_-]+$ (no dots).
EXCLUSIONS_FILE = "/etc/aide/aide.conf.d/90_galion_exclusions"
ABSOLUTE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")

# Hashes AIDE can record (aide --version lists them); "H" is every one compiled in.
HASHES = {"md5", "sha1", "sha256", "sha512", "rmd160", "tiger", "crc32", "haval", "gost"}
HASHES |= {"whirlpool", "stribog256", "stribog512", "H"}

KNOBS = {
    "file_integrity_enabled": Knob(
        True, "AIDE: a baseline of the system's files and a daily check against it."
    ),
    # One strong hash is as good a witness as Debian's "H" (every hash it knows) at a
    # twelfth of the CPU (a baseline of the sandbox host: 49 s with "H", 4 s with
    # sha512), every day.
    "file_integrity_checksums": Knob(
        "sha512",
        "What AIDE records of each file's content: its hashes, joined by +.",
        check=lambda v: isinstance(v, str) and v != "" and set(v.split("+")) <= HASHES,
        problem="is not AIDE hashes joined by +",
        fix=f'e.g. {{default}} or "sha256+sha512" (one of {", ".join(sorted(HASHES))})',
    ),
    # Everything else under / is watched.
    "file_integrity_excluded_paths": Knob(
        [
            "/var/lib/postgresql",
            "/var/lib/pgbackrest",
            "/var/lib/redis",
            "/var/lib/docker",
            "/var/lib/containerd",
            "/run/containerd",
            "/run/docker",
            "/var/backups",
            "/var/log",
            "/var/cache",
            "/var/spool",
            "/var/lib/galion",
            "/var/lib/letsencrypt",
            "/var/lib/prometheus",
            "/tmp",
            "/var/tmp",
        ],
        "Paths AIDE leaves out: they change all day by design (databases, backups, logs, "
        "containers).",
        check=lambda v: isinstance(v, list) and all(ABSOLUTE_PATH.match(str(p)) for p in v),
        problem="is not a list of absolute paths",
        fix='e.g. ["/var/lib/postgresql"]',
    ),
}

# Last: the baseline is taken once everything else is installed.
ROLE = Role(groups=(), order=99, knob_prefixes=("file_integrity_",))


def exclusion_lines(paths: list[str]) -> list[str]:
    """AIDE selection lines: `!` + an anchored regex of the path and all below it."""
    return [f"!{re.escape(path)}(/|$)" for path in paths]


def baseline_command(hashes: str, replaces_one: bool) -> str:
    """A new baseline, once aide.conf passes its check; then the marker of its hashes.
    Replacing a baseline first keeps the report of what changed since the old one in
    /var/log/aide, so a new baseline never hides a change nobody looked at."""
    report = (
        f"(umask 077; aide --check --config {AIDE_CONF}"
        ' > "/var/log/aide/before-new-baseline-$(date +%F).log" 2>&1); '
        if replaces_one
        else ""
    )
    return (
        f"aide --config-check --config {AIDE_CONF} >/dev/null && {{ {report}"
        f"aideinit --yes --force >/dev/null && echo {hashes} > {BASELINE_HASHES}; }}"
    )


def config_check_command() -> str:
    """config_file validation: AIDE checks a scratch copy of its whole configuration with
    the staged exclusions in place of the live ones."""
    return (
        "d=$(mktemp -d -p /tmp) && cp -a /etc/aide/. $d/ && rm -f $d/aide.conf.d/*.galion-new"
        f" && cp {{staged}} $d/aide.conf.d/{EXCLUSIONS_FILE.rsplit('/', 1)[1]}"
        ' && sed -i "s#/etc/aide/aide.conf.d#$d/aide.conf.d#" $d/aide.conf'
        " && aide --config-check --config $d/aide.conf >/dev/null; r=$?; rm -rf $d; exit $r"
    )


@deploy("File integrity (AIDE)")
def file_integrity():
    data = host.data
    if not data.file_integrity_enabled:
        return
    apt.packages(
        name="AIDE",
        # aide-common: aide.conf, aideinit and the daily check (only recommended on Debian 13).
        packages=["aide", "aide-common"],
        no_recommends=True,
        cache_time=3600,
        update=True,
    )
    config_file(
        name="AIDE leaves out what changes by design",
        dest=EXCLUSIONS_FILE,
        content=render(
            "file_integrity/aide-exclusions.j2",
            lines=exclusion_lines(data.file_integrity_excluded_paths),
        ),
        validate=config_check_command(),
    )
    hashes = data.file_integrity_checksums
    files.line(
        name=f"AIDE records {hashes} of each file",
        path=AIDE_CONF,
        line=r"^Checksums\s*=.*",
        replace=f"Checksums = {hashes}",
    )
    # A baseline recorded with other hashes would make every file look changed: a new
    # one until the marker (written after a baseline succeeded) names these hashes.
    has_baseline = host.get_fact(PathExists, path=AIDE_DB)
    if not has_baseline or (host.get_fact(FileContents, path=BASELINE_HASHES) or []) != [hashes]:
        server.shell(
            name="AIDE baseline of this host's files (first converge, or new hashes)",
            commands=[baseline_command(hashes, has_baseline)],
        )
