"""Templates under templates/, rendered locally (never on a host)."""

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..paths import TEMPLATES

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
