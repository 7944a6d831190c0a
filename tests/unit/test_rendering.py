"""Every role renders its templates from the defaults alone (no hosts): a template
variable the code forgets to pass fails here, not on a host."""

import re
from pathlib import Path

import pytest
from jinja2 import meta

from galion.ops import _jinja

REPO = Path(__file__).resolve().parents[2]
ALL = sorted(
    p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*.j2")
)
# Pieces other templates include (`{% include %}`); the includers' roles pass their variables.
PARTIALS = [t for t in ALL if "/partials/" in t]
TEMPLATES = [t for t in ALL if t not in PARTIALS]


def _used(template: str) -> set[str]:
    """Variables a template reads, its included pieces' too."""
    parsed = _jinja.parse(_jinja.loader.get_source(_jinja, template)[0])
    used = meta.find_undeclared_variables(parsed) - {"range", "loop"}
    for inner in meta.find_referenced_templates(parsed):
        used |= _used(inner)
    return used


@pytest.mark.parametrize("partial", PARTIALS)
def test_every_partial_is_included_by_a_template(partial):
    includers = [
        t
        for t in TEMPLATES
        if partial
        in meta.find_referenced_templates(_jinja.parse(_jinja.loader.get_source(_jinja, t)[0]))
    ]
    assert includers, f"no template includes {partial}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_variable_a_template_uses_is_passed_by_its_role(template):
    """The role module that renders a template passes each variable the template (and
    what it includes) reads."""
    used = _used(template)
    callers = [
        p
        for p in [*(REPO / "operations").rglob("*.py"), *(REPO / "galion").glob("*.py")]
        if f'"{template}"' in p.read_text()
    ]
    assert callers, f"no role renders {template}"
    for caller in callers:
        passed = _passed_names(caller.read_text(), template)
        missing = used - passed
        assert not missing or "*" in passed, f"{caller.name} does not pass {missing} to {template}"


def _passed_names(text: str, template: str) -> set[str]:
    """Keyword names of the render(...) call that names the template (by paren matching)."""
    start = text.index(f'"{template}"')
    depth, end = 1, start
    while depth:
        end += 1
        depth += {"(": 1, ")": -1}.get(text[end], 0)
    call = text[start:end]
    return set(re.findall(r"\b([a-z_][a-z0-9_]*)=", call)) | ({"*"} if "**" in call else set())
