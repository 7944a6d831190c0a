"""What every galion fact shares: the base class and two small parsers."""

import copy
from typing import Any, ClassVar

from pyinfra.api import FactBase


def _normalise(value: str) -> str:
    return " ".join(str(value).split())


def _first_line(output: list[str]) -> str:
    """The first output line stripped, or "" when there is none."""
    return output[0].strip() if output else ""


class _Fact(FactBase):
    """A fact that declares its required command and default value as class attributes.

    pyinfra calls ``requires_command()`` (absent binary: the fact returns ``default()``)
    and ``default()`` (also used when the command prints nothing).
    """

    required_command: ClassVar[str | None] = None
    default_value: ClassVar[Any] = None

    def requires_command(self, *args, **kwargs):
        return self.required_command

    def default(self):
        # A copy: pyinfra caches fact results, a shared mutable default could leak changes.
        return copy.deepcopy(self.default_value)
