"""Facts of files: whether a path exists, which files hold a marker, settings of an
ini-style file, the age of a failure marker."""

import shlex
from typing import Any, ClassVar

from ._base import _Fact, _first_line


class PathExists(_Fact):
    """Whether a path exists (any type)."""

    def command(self, path):
        return f"test -e {path} && echo yes || echo no"

    def process(self, output):
        return _first_line(output) == "yes"


class FilesMarked(_Fact):
    """The files directly in `path` whose names match the shell glob `names` and that hold
    `marker` (a managed file's header line): their paths."""

    default_value: ClassVar[list] = []

    def command(self, path, names, marker):
        return f"grep -lsF -- {shlex.quote(marker)} {shlex.quote(path)}/{names} || true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def parse_settings(lines, keys=None) -> dict[str, str]:
    """`key = value` lines of an ini-style file, for the keys asked or all (first one wins)."""
    found: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        key = key.strip()
        if (
            sep
            and (keys is None or key in keys)
            and key not in found
            and not key.startswith((";", "#"))
        ):
            found[key] = value.strip()
    return found


class ConfigSettings(_Fact):
    """Some `key = value` settings of an ini-style file: `{key: value}`; {} if it is missing."""

    default_value: ClassVar[Any] = {}

    def command(self, path, keys):
        pattern = "|".join(keys)
        return f"grep -E '^[[:space:]]*({pattern})[[:space:]]*=' {path} 2>/dev/null || true"

    def process(self, output):
        return parse_settings(output)


class SecondsSinceFailure(_Fact):
    """Seconds since the epoch time written in a marker file (a failure's time, by the
    host's clock), or None if there is no marker."""

    def command(self, path):
        return f'test -f {path} && echo "$(date +%s) $(head -c 32 {path})" || true'

    def process(self, output):
        # The arithmetic is done here: a damaged marker (a full disk) means "no marker".
        parts = _first_line(output).split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None
        return int(parts[0]) - int(parts[1])
