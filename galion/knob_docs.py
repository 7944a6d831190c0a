"""docs/KNOBS.md from the knobs' declarations: one table per role (knob, default, doc).

    python -m galion.knob_docs           # print it
    python -m galion.knob_docs --write   # write docs/KNOBS.md

tests/unit/test_knobs.py fails when the committed file differs from what this writes."""

import ast
import inspect
import sys
from pathlib import Path

from . import shared_knobs
from .paths import REPO
from .role import Knob, defaults

DOCS = REPO / "docs" / "KNOBS.md"
LONGEST_DEFAULT = 60

HEADER = """\
# Knobs

Every knob with its default. Set any of them per host or per group in the inventory
(`inventories/*.py`), or for one run with `--data name=value`; preflight checks each
value before any host is touched, and refuses a knob under a name it had before
(galion/knob_renames.py).

Generated from the declarations (`python -m galion.knob_docs --write`): edit the
declaration, not this file.
"""


def shown(value) -> str:
    """A default as an inventory writes it, short enough for a table cell."""
    text = repr(value)
    if len(text) > LONGEST_DEFAULT:
        if isinstance(value, list):
            text = f"a list of {len(value)}"
        elif isinstance(value, dict):
            text = f"a dict of {len(value)}"
        else:
            text = text[: LONGEST_DEFAULT - 4] + "...'"
        return text.replace("|", "\\|")
    return "`" + text.replace("|", "\\|") + "`"


def _comments_above(module) -> dict[str, str]:
    """Transitional, for roles whose KNOBS are still plain defaults: the comment lines
    above each key of the KNOBS dict literal, as its doc."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["KNOBS"]:
            docs = {}
            for key in node.value.keys:
                above = []
                i = key.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#"):
                    text = lines[i].strip().lstrip("#").strip()
                    if not text.startswith("---"):  # a section's title
                        above.insert(0, text)
                    i -= 1
                docs[key.value] = " ".join(above)
            return docs
    return {}


def docs_of(module_or_knobs) -> dict[str, str]:
    knobs = getattr(module_or_knobs, "KNOBS", module_or_knobs)
    if all(isinstance(k, Knob) for k in knobs.values()):
        return {name: k.doc for name, k in knobs.items()}
    return _comments_above(module_or_knobs)


def table(title: str, where: str, knobs: dict, docs: dict[str, str]) -> str:
    rows = [f"## {title}", "", f"Declared in `{where}`.", ""]
    if not knobs:
        return "\n".join(rows + ["No knobs of its own.", ""])
    rows += ["| Knob | Default | What it is |", "|---|---|---|"]
    for name, value in defaults(knobs).items():
        doc = docs.get(name, "").replace("|", "\\|")
        rows.append(f"| `{name}` | {shown(value)} | {doc} |")
    return "\n".join(rows + [""])


def _where(module) -> str:
    path = Path(module.__file__)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def render(roles=None) -> str:
    import operations

    roles = operations.ROLES if roles is None else roles
    parts = [
        HEADER,
        table(
            "Shared (several roles read them)",
            "galion/shared_knobs.py",
            shared_knobs.KNOBS,
            docs_of(shared_knobs.KNOBS),
        ),
    ]
    for module in roles:
        parts.append(table(operations.name(module), _where(module), module.KNOBS, docs_of(module)))
    return "\n".join(parts)


def main(argv: list[str]) -> None:
    text = render()
    if "--write" in argv:
        DOCS.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
