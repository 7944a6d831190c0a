"""The role contract (galion/role.py): roles are found from their own files, and their
knobs, checks and secrets follow from what they declare (no hosts)."""

import ast
import importlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

import operations
from galion import preflight, role, secrets, shared_knobs
from tests.unit.helpers import run_pyinfra

REPO = Path(__file__).resolve().parents[2]
ROLE_FILES = {operations.name(m): Path(m.__file__) for m in operations.ROLES}
GROUP_DATA = REPO / "group_data" / "all.py"
SHARED_FILE = REPO / "galion" / "shared_knobs.py"
# Keys a role reads that are not knobs: connection data and operator actions' --data.
NOT_KNOBS = {
    "ssh_user",
    "ssh_hostname",
    "ssh_key",
    "ssh_port",
    "private_address",
    "backups_restore_pending",
}


def _all_py() -> dict:
    values: dict = {}
    exec(GROUP_DATA.read_text(), values)
    return {k: v for k, v in values.items() if not k.startswith("_")}


def _shared_knobs() -> dict[str, int]:
    """The knobs galion/shared_knobs.py declares, with their line numbers."""
    return _knob_lines(SHARED_FILE)


def _knob_lines(path: Path) -> dict[str, int]:
    """The keys of a role module's KNOBS dict literal, with their line numbers."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["KNOBS"]:
            return {k.value: k.lineno for k in node.value.keys}
    raise AssertionError(f"{path.name} has no KNOBS dict literal")


CONVERGE_ORDER = [
    "base",
    "node_exporter",
    "os_hardening",
    "postgres",
    "pgbouncer",
    "redis",
    "backups",
    "docker",
    "app_env",
    "nginx_tls",
    "app_proxy",
    "apps",
    "monitoring",
    "file_integrity",
]


def test_roles_are_found_in_converge_order():
    names = [operations.name(m) for m in operations.ROLES]
    assert names == CONVERGE_ORDER
    assert "restore" not in names  # an operator action, not a role


def test_every_role_has_an_entry_point_named_like_it():
    for module in operations.ROLES:
        assert callable(operations.entry_point(module)), operations.name(module)


def _documented(knobs: dict, key: str, lines: list[str], lineno: int) -> bool:
    """A `Knob` carries its one-line doc; transitional, a plain default a comment above."""
    if isinstance(knobs[key], role.Knob):
        doc = knobs[key].doc
        return bool(doc.strip()) and "\n" not in doc
    return lines[lineno - 2].strip().startswith("#")


@pytest.mark.parametrize("name", sorted(ROLE_FILES))
def test_role_knobs_carry_the_role_prefix_and_a_comment(name):
    module = importlib.import_module(f"operations.{name}")
    lines = ROLE_FILES[name].read_text().splitlines()
    declared = _knob_lines(ROLE_FILES[name])
    assert set(declared) == set(module.KNOBS)
    for key, lineno in declared.items():
        assert key.startswith(module.ROLE.knob_prefixes), f"{name}: {key}"
        assert _documented(module.KNOBS, key, lines, lineno), f"{name}:{lineno} {key} has no doc"


def test_shared_knobs_have_a_comment_and_a_known_prefix():
    lines = SHARED_FILE.read_text().splitlines()
    prefixes = tuple(p for m in operations.ROLES for p in m.ROLE.knob_prefixes) + ("operator_",)
    for key, lineno in _shared_knobs().items():
        assert _documented(shared_knobs.KNOBS, key, lines, lineno), f"{key} has no doc"
        assert key.startswith(prefixes), key


def test_each_knob_lives_in_one_place():
    seen: dict[str, str] = {k: "galion/shared_knobs.py" for k in _shared_knobs()}
    for module in operations.ROLES:
        for key in module.KNOBS:
            assert key not in seen, f"{key} in {seen[key]} and {operations.name(module)}"
            seen[key] = operations.name(module)


def test_group_data_hands_every_role_knob_to_every_host():
    data = _all_py()
    for module in operations.ROLES:
        for key, value in module.KNOBS.items():
            assert data[key] == value.default
    for key, knob in shared_knobs.KNOBS.items():
        assert data[key] == knob.default


def test_every_knob_the_code_reads_is_defined():
    """A typo in `data.nginx_vhost` would only fail on a host: catch it here."""
    defined = set(_all_py()) | NOT_KNOBS
    read = set()
    scanned = [*(REPO / "operations").rglob("*.py"), *(REPO / "actions").rglob("*.py")]
    for path in scanned + [REPO / "galion" / "topology.py"]:
        text = path.read_text()
        read.update(re.findall(r"\bdata\.([a-z][a-z0-9_]+)\b(?!\()", text))
        read.update(re.findall(r"\bdata\.get\(\"([a-z][a-z0-9_]+)\"", text))
    read -= {"get", "dict"}
    read = {k for k in read if not k.startswith("restore")}  # actions/restore_steps.py's --data
    assert read, "the scan found nothing: it is broken"
    assert read <= defined, sorted(read - defined)


def test_each_check_is_for_a_knob_its_role_or_all_py_defines():
    data = _all_py()
    for module in operations.ROLES:
        for key, *_ in role.checks(module):
            assert key in data, f"{operations.name(module)} checks unknown {key}"


def test_role_groups_and_the_sandbox_follow_the_declarations():
    from sandbox import settings

    assert operations.known_groups() == [
        "app",
        "backups",
        "db",
        "db_replica",
        "edge",
        "monitoring",
    ]
    single = settings.TOPOLOGIES["single"][0].groups
    assert set(single) == {"app", "backups", "db", "edge", "monitoring"}
    for spec in settings.TOPOLOGIES["fleet"]:
        assert set(spec.groups) <= set(operations.known_groups()), spec


def test_no_role_table_outside_operations():
    """The mechanism files name no group and no role knob: roles declare them."""
    knobs = set(operations.knobs())
    groups = set(operations.known_groups())
    for path in (
        "galion/preflight.py",
        "galion/role.py",
        "operations/__init__.py",
        "deploy.py",
        "config.py",
        "sandbox/settings.py",
    ):
        text = (REPO / path).read_text()
        if path == "sandbox/settings.py":  # the fleet's hand-drawn hosts are its data
            text = text.split('"fleet": (')[0]
        strings = set(re.findall(r"[\"']([a-z_]+)[\"']", text))
        assert not strings & groups, f"{path} names groups {strings & groups}"
        assert not strings & knobs, f"{path} names role knobs {strings & knobs}"


# --- a new role touches only its own file -------------------------------------------------

THROWAWAY_ROLE = '''
    """A throwaway role for tests: a cache service on hosts in `cache`."""

    from pyinfra.api import deploy

    from galion.validators import is_port
    from galion.role import Knob, Role

    KNOBS = {
        "cachestore_port": Knob(11211, "Port the cache listens on.", check=is_port),
    }

    ROLE = Role(
        groups=("cache",),
        order=35,
        knob_prefixes=("cachestore_",),
        required_secrets=lambda data: ["CACHESTORE_PASSWORD"],
    )


    @deploy("Cache store")
    def cachestore():
        pass
'''


@pytest.fixture
def throwaway_role(tmp_path, monkeypatch):
    """operations/ with one more module, as if a file had been added there."""
    extra = tmp_path / "extra_roles"
    extra.mkdir()
    (extra / "cachestore.py").write_text(textwrap.dedent(THROWAWAY_ROLE))
    monkeypatch.setattr(operations, "__path__", [*operations.__path__, str(extra)])
    yield operations.discover()
    sys.modules.pop("operations.cachestore", None)


@pytest.fixture
def env_with_every_example_secret(tmp_path, monkeypatch):
    env = tmp_path / "all.env"
    env.write_text(
        "".join(
            f"{k}=value-long-enough-{i:04d}\n" for i, k in enumerate(sorted(secrets.example_keys()))
        )
    )
    monkeypatch.setenv("GALION_ENV_FILE", str(env))
    secrets.reset_cache()
    yield
    secrets.reset_cache()


def test_a_new_role_module_is_picked_up_everywhere(throwaway_role, env_with_every_example_secret):
    roles = throwaway_role
    names = [operations.name(m) for m in roles]
    # Its order=35 puts it between redis (30) and backups (40).
    i = CONVERGE_ORDER.index("backups")
    assert names == [*CONVERGE_ORDER[:i], "cachestore", *CONVERGE_ORDER[i:]]
    assert "cache" in operations.known_groups(roles)
    assert "cache" in operations.single_box_groups(roles)
    assert operations.knobs(roles)["cachestore_port"] == 11211
    assert [f.__name__ for f in operations.for_host({"cache"}, roles)] == [
        "base",
        "node_exporter",
        "os_hardening",
        "cachestore",
        "file_integrity",
    ]

    data = dict(
        _all_py(),
        cachestore_port=0,
        base_deploy_authorized_keys=[
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz4E8b8oE4t7aVq4qGzC0Wj9kG0l8x1Yk2m9n3o4p5q op"
        ],
    )
    box = SimpleNamespace(name="box", data=data, groups=["cache"])
    lines = [p.line() for p in preflight.check([box], roles)]
    assert any(
        "box: cachestore_port: 0 is not a TCP port (fix: use 11211)" in line for line in lines
    ), lines
    assert any("box: secret CACHESTORE_PASSWORD: missing" in line for line in lines), lines
    assert not any("group cache" in line for line in lines), lines
    # Without the module, `cache` is an unknown group.
    before = [p.line() for p in preflight.check([box], operations.ROLES)]
    assert any("group cache: is not a role group" in line for line in before), before


def test_a_new_role_file_alone_reaches_the_real_cli(tmp_path):
    """Copy the tree, add operations/cachestore.py and nothing else: pyinfra's own run
    checks the new role's knob and secret before connecting."""
    tree = tmp_path / "tree"
    for name in ("galion", "operations", "group_data", "templates", "files", "sandbox"):
        shutil.copytree(REPO / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("deploy.py", "config.py", ".env.example"):
        shutil.copy(REPO / name, tree / name)
    (tree / "inventories").mkdir()
    (tree / "operations" / "cachestore.py").write_text(textwrap.dedent(THROWAWAY_ROLE))
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz4E8b8oE4t7aVq4qGzC0Wj9kG0l8x1Yk2m9n3o4p5q op"
    (tree / "inventories" / "case.py").write_text(
        f"cache = [('box', {{'ssh_hostname': '127.0.0.1', 'ssh_port': 9, "
        f"'base_deploy_authorized_keys': [{key!r}], 'cachestore_port': 70000}})]\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "GALION_ENV_FILE": str(tmp_path / "none.env"),
        "HOME": str(tmp_path),
    }
    proc = run_pyinfra(tree, env, "inventories/case.py", "deploy.py")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("preflight:")]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert any("cachestore_port: 70000 is not a TCP port" in ln for ln in lines), lines
    assert any("secret CACHESTORE_PASSWORD: missing" in ln for ln in lines), lines
    assert not any("group cache" in ln for ln in lines), lines
    single = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sandbox import settings; print(settings.TOPOLOGIES['single'][0].groups)",
        ],
        cwd=tree,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    assert "cache" in single
