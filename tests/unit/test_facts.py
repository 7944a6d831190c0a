"""galion.facts without a host: commands as literal strings, parsers fed recorded output.
This module holds what all facts share; each domain's facts are tested in
test_facts_<domain>.py (galion/facts/<domain>.py).

The recorded lines are what the commands print on Debian 12 / 13 (OpenSSH 9.2 / 10.0,
ufw 0.36, PostgreSQL 15 / 17, pgBackRest 2.5x, OpenSSL 3).
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from pyinfra.api import FactBase

import galion.facts
from galion.facts import apt, certbot, files, firewall, pgbackrest, system
from tests.unit.fact_coverage import TESTED

DOMAINS = [
    importlib.import_module(f"galion.facts.{m.name}")
    for m in pkgutil.iter_modules(galion.facts.__path__)
    if not m.name.startswith("_")
]


def test_every_fact_class_has_tests():
    # The domains' test modules mark what they cover when imported (pytest may not have
    # collected them yet, or at all when one file is run).
    for path in sorted(Path(__file__).parent.glob("test_facts_*.py")):
        importlib.import_module(f"tests.unit.{path.stem}")
    declared = {
        obj
        for module in DOMAINS
        for name, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, FactBase) and obj.__module__ == module.__name__ and name[0] != "_"
    }
    assert declared, "no fact class found: the scan is broken"
    assert declared == TESTED


def test_the_package_exports_nothing_every_importer_names_the_domain_module():
    # galion/facts/__init__.py: a re-export would let the layout's import check pass
    # an import from the package.
    assert galion.facts.__all__ == []
    exported = [n for n in vars(galion.facts) if n[0].isupper()]
    assert exported == [], exported


def test_fact_names_stay_those_pyinfra_knows():
    # pyinfra names facts after module and class; a rename changes its output and cache keys.
    assert firewall.UfwStatus.name == "galion.facts.firewall.UfwStatus"
    assert pgbackrest.PgbackrestStanza.name == "galion.facts.pgbackrest.PgbackrestStanza"


def test_default_is_a_fresh_copy_each_time():
    first = firewall.UfwStatus().default()
    first["active"] = True
    first["incoming"] = "allow"
    assert firewall.UfwStatus().default() == {"active": False}
    rules = firewall.UfwAddedRules().default()
    rules.append("allow 22/tcp")
    assert firewall.UfwAddedRules().default() == []


@pytest.mark.parametrize(
    "cls",
    [
        system.SysctlState,
        system.SystemdUnitEnabled,
        files.PathExists,
        system.ContainerVirtualization,
        system.MemoryTotalMb,
        apt.AptCandidate,
        certbot.CertbotLineage,
    ],
)
def test_facts_without_a_required_command_default_to_none(cls):
    assert cls().requires_command() is None
    assert cls().requires_command("any", arg="any") is None
    assert cls().default() is None
