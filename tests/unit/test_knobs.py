"""Each knob declared once (galion/role.py: Knob): preflight's row, its fix text and
docs/KNOBS.md all follow from the declaration; renamed knobs are refused (no hosts)."""

import dataclasses
from types import SimpleNamespace

import pytest

import operations
from galion import knob_docs, preflight, role, shared_knobs
from galion.knob_renames import RENAMED
from operations import redis

DECLARED = [(operations.name(m), m.KNOBS) for m in operations.ROLES if m.KNOBS] + [
    ("shared", shared_knobs.KNOBS)
]
KNOBS = [
    (where, name, knob)
    for where, knobs in DECLARED
    for name, knob in knobs.items()
    if isinstance(knob, role.Knob)
]


def _problems(data: dict) -> list[str]:
    box = SimpleNamespace(name="box", data=dict(_defaults(), **data), groups=["db"])
    return [p.line() for p in preflight.check([box], operations.ROLES)]


def _defaults() -> dict:
    values: dict = {}
    exec((knob_docs.REPO / "group_data" / "all.py").read_text(), values)
    return {k: v for k, v in values.items() if not k.startswith("_")}


def test_the_committed_knob_docs_are_what_the_declarations_write():
    assert knob_docs.DOCS.read_text() == knob_docs.render(), (
        "docs/KNOBS.md is stale: python -m galion.knob_docs --write"
    )


def test_a_changed_default_changes_its_fix_text_and_its_docs(monkeypatch):
    before = _problems({"redis_maxmemory_mb": 1})
    assert any("redis_maxmemory_mb: 1 is not a size in MB (fix: use 2048)" in x for x in before)
    assert "| `redis_maxmemory_mb` | `2048` |" in knob_docs.render()

    knob = dataclasses.replace(redis.KNOBS["redis_maxmemory_mb"], default=3072)
    monkeypatch.setitem(redis.KNOBS, "redis_maxmemory_mb", knob)
    after = _problems({"redis_maxmemory_mb": 1})
    assert any("redis_maxmemory_mb: 1 is not a size in MB (fix: use 3072)" in x for x in after)
    docs = knob_docs.render()
    assert "| `redis_maxmemory_mb` | `3072` |" in docs
    assert "`2048`" not in docs
    assert operations.knobs()["redis_maxmemory_mb"] == 3072


def test_a_changed_shared_default_changes_its_fix_text_and_its_docs(monkeypatch):
    knob = dataclasses.replace(shared_knobs.KNOBS["node_exporter_port"], default=9200)
    monkeypatch.setitem(shared_knobs.KNOBS, "node_exporter_port", knob)
    lines = _problems({"node_exporter_port": 80})
    assert any(
        "node_exporter_port: 80 is not an unprivileged TCP port (fix: use 9200)" in x for x in lines
    ), lines
    assert "| `node_exporter_port` | `9200` |" in knob_docs.render()


@pytest.mark.parametrize(("where", "name", "knob"), KNOBS, ids=[k[1] for k in KNOBS])
def test_a_default_passes_its_own_check(where, name, knob):
    assert knob.check is None or knob.check(knob.default), f"{where}: {name}"


@pytest.mark.parametrize(("where", "name", "knob"), KNOBS, ids=[k[1] for k in KNOBS])
def test_a_fix_that_names_the_default_takes_it_from_the_declaration(where, name, knob):
    """A fix text written out ("use 200") would drift from the default: it says
    {default}, which the declaration fills in."""
    value = knob.default
    # An empty default ("") is written '' or "": "use " alone names nothing.
    for written in {str(value), repr(value), f'"{value}"'} - {""}:
        assert f"use {written}" not in knob.fix, f"{where}: {name}: write {{default}} in its fix"
    assert knob.doc.strip() and "\n" not in knob.doc, f"{where}: {name}: one line of doc"


def test_every_knob_is_declared_as_a_knob_and_checked_in_one_place():
    """No plain default is left in any KNOBS (the transitional form is gone), and a Role
    has no rows of checks of its own: each knob's check is in its declaration."""
    for module in operations.ROLES:
        plain = [k for k, v in module.KNOBS.items() if not isinstance(v, role.Knob)]
        assert plain == [], f"{operations.name(module)}: {plain}"
        assert not hasattr(module.ROLE, "checks"), operations.name(module)
    assert all(isinstance(v, role.Knob) for v in shared_knobs.KNOBS.values())


def test_renamed_knobs_point_at_knobs_that_exist():
    knobs = set(operations.knobs()) | set(shared_knobs.KNOBS)
    assert set(RENAMED.values()) <= knobs, sorted(set(RENAMED.values()) - knobs)
    assert not set(RENAMED) & knobs, sorted(set(RENAMED) & knobs)


def test_a_knob_under_its_old_name_is_refused_with_the_new_one():
    lines = _problems({"hardening_login_umask": "022", "nginx_acme_ca_bundle": None})
    assert (
        "preflight: box: hardening_login_umask: renamed to os_hardening_login_umask "
        "(fix: rename it in your inventory)"
    ) in lines
    # Even set to None: the setting would be lost all the same.
    assert any("nginx_acme_ca_bundle: renamed to nginx_tls_acme_ca_bundle" in x for x in lines)
