"""The tree's layering, read from the source with `ast` (nothing is imported): no role
imports another, galion/ (the shared pieces) imports no role, operations/ and galion/
import no operator action, the project's own imports form no circle, and no module of
operations/ or galion/ outgrows a screenful of concerns."""

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("operations", "galion", "actions")
LONGEST = 450  # lines of a module in operations/ or galion/ (../shared/STYLE.md)

# galion/ importing operations/, where it cannot be helped: the docs generator's command
# line (`python -m galion.knob_docs --write`) documents every role, so it reads
# operations.ROLES, inside the function, once operations has loaded.
GALION_READS_ROLES = {"galion.knob_docs"}
# Roles that read the discovery (operations/__init__.py), not another role's module:
# base's firewall knob is keyed by inventory group, and the groups are those every role
# declares (`operations.known_groups`, imported inside the check, once all are loaded).
ROLES_READING_DISCOVERY = {"operations.base.checks"}


def modules(root: Path = REPO) -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package)} of the project's own modules."""
    found = {}
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            package = parts[-1] == "__init__"
            if package:
                parts.pop()
            found[".".join(parts)] = (path, package)
    return found


def imports(root: Path = REPO) -> dict[str, dict[str, int]]:
    """{module: {project module it imports: line}}, every import in the file (inside
    functions and `if TYPE_CHECKING:` too: a lazy import hides a circle, it does not
    remove it); relative imports resolved. `from package import name` is the submodule
    `package.name` when there is one, else the package itself."""
    known = modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, (path, package) in known.items():
        base = name if package else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [resolve(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    source = ".".join(parts + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in known else resolve(source))
            for target in targets:
                if target and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def role_of(module: str) -> str | None:
    """The role a module belongs to: operations.<role> and what is below it."""
    parts = module.split(".")
    return parts[1] if parts[0] == "operations" and len(parts) > 1 else None


def cross_role_imports(graph, discovery_readers=()) -> list[str]:
    found = []
    for module, edges in graph.items():
        role = role_of(module)
        if role is None:
            continue
        for target, line in edges.items():
            if target == "operations" and module not in discovery_readers:
                found.append(f"{module}:{line} imports operations (every role)")
            elif target.startswith("operations.") and role_of(target) != role:
                found.append(f"{module}:{line} imports the role {role_of(target)} ({target})")
    return found


def imports_into(graph, sources: str, targets: tuple[str, ...], allowed=()) -> list[str]:
    return [
        f"{module}:{line} imports {target}"
        for module, edges in graph.items()
        if module.split(".")[0] == sources and module not in allowed
        for target, line in edges.items()
        if target.split(".")[0] in targets
    ]


def cycles(graph) -> list[list[str]]:
    """Each circle of imports once, as the path that closes it (Tarjan's strongly
    connected components, then one path through each)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_through(graph, component) for component in components]


def _path_through(graph, component: set[str]) -> list[str]:
    start = min(component)
    seen, paths = {start}, [[start]]
    while paths:
        path = paths.pop(0)
        for w in sorted(graph.get(path[-1], {})):
            if w == start:
                return path + [start]
            if w in component and w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return sorted(component)


def long_files(root: Path = REPO) -> dict[str, int]:
    return {
        path.relative_to(root).as_posix(): n
        for top in ("operations", "galion", "actions")
        for path in sorted((root / top).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > LONGEST
    }


def package_imports(root: Path, package: str, files: list[Path]) -> list[str]:
    """`from <package> import Name` where Name is defined in one of its modules."""
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == package and not node.level:
                folder = root.joinpath(*package.split("."))
                names = [
                    a.name
                    for a in node.names
                    if not (folder / a.name).is_dir() and not (folder / f"{a.name}.py").exists()
                ]
                if names:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {', '.join(names)}")
    return found


def defined_in(path: Path) -> set[str]:
    """The names a module defines at its top level (not those it imports)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


# --- the tree ---------------------------------------------------------------------------


def test_the_scan_reads_the_imports():
    graph = imports()
    assert "operations.postgres.replication" in graph["operations.postgres"]
    assert "galion.ops" in graph["operations.postgres"]
    assert "galion.facts.postgres" in graph["operations.pgbouncer"]
    assert "galion.paths" in graph["galion.ops.files"]  # `from ..paths import`
    assert "actions.failover_steps" in graph["actions.failover"]


def test_no_role_imports_another_role():
    graph = imports()
    assert cross_role_imports(graph, ROLES_READING_DISCOVERY) == []
    for module in ROLES_READING_DISCOVERY:  # still needed, or drop it from the list
        assert "operations" in graph[module]


def test_galion_imports_no_role():
    graph = imports()
    assert imports_into(graph, "galion", ("operations",), GALION_READS_ROLES) == []
    for module in GALION_READS_ROLES:  # still needed, or drop it from the list
        assert "operations" in graph[module]


def test_roles_and_galion_import_no_operator_action():
    graph = imports()
    assert imports_into(graph, "operations", ("actions",)) == []
    assert imports_into(graph, "galion", ("actions",)) == []


def test_the_imports_form_no_circle():
    assert [" -> ".join(c) for c in cycles(imports())] == []


def test_no_module_of_operations_or_galion_is_longer_than_450_lines():
    assert long_files() == {}


def test_facts_and_validators_are_imported_from_the_modules_that_define_them():
    files = [
        p
        for top in (*PACKAGES, "tests", "sandbox", "bench")
        for p in sorted((REPO / top).rglob("*.py"))
    ] + [REPO / "config.py", REPO / "deploy.py"]
    assert package_imports(REPO, "galion.facts", files) == []
    # preflight runs the validators; galion/validators.py defines them.
    validators = defined_in(REPO / "galion" / "validators.py")
    late = [
        f"{p.relative_to(REPO)}:{node.lineno}"
        for p in files
        if p.parts[len(REPO.parts)] in ("operations", "galion", "actions")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.ImportFrom)
        and node.module in ("galion.preflight", "preflight")
        and {a.name for a in node.names} & validators
    ]
    assert late == []


# --- the checks themselves, on a tree made up for them ------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for top in PACKAGES:
        (tmp_path / top).mkdir(exist_ok=True)
    return tmp_path


def test_a_role_importing_another_is_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "operations/__init__.py": "import importlib\n",
            "operations/cache/__init__.py": "from . import store\n",
            "operations/cache/store.py": "from operations.queue import worker\n",
            "operations/queue/__init__.py": "",
            "operations/queue/worker.py": "from ..cache import store\n",
            "operations/mail.py": "import operations\n",
        },
    )
    assert sorted(cross_role_imports(imports(root))) == [
        "operations.cache.store:1 imports the role queue (operations.queue.worker)",
        "operations.mail:1 imports operations (every role)",
        "operations.queue.worker:1 imports the role cache (operations.cache.store)",
    ]


def test_galion_importing_a_role_is_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "galion/__init__.py": "",
            "galion/helper.py": "def f():\n    from operations import cache\n",
            "operations/__init__.py": "",
            "operations/cache.py": "",
        },
    )
    assert imports_into(imports(root), "galion", ("operations",)) == [
        "galion.helper:2 imports operations.cache"
    ]


def test_a_circle_is_found_through_lazy_and_relative_imports(tmp_path):
    root = _tree(
        tmp_path,
        {
            "galion/__init__.py": "",
            "galion/a.py": "from . import b\n",
            "galion/b.py": "from .c import thing\n",
            "galion/c.py": "def thing():\n    from galion import a\n",
            "galion/d.py": "from galion import a\n",
            "galion/sub/__init__.py": "from . import e\n",
            "galion/sub/e.py": "from .. import d\n",
        },
    )
    assert cycles(imports(root)) == [["galion.a", "galion.b", "galion.c", "galion.a"]]


def test_a_long_file_is_found(tmp_path):
    root = _tree(tmp_path, {"galion/__init__.py": "", "galion/big.py": "x = 1\n" * 451})
    assert long_files(root) == {"galion/big.py": 451}


@pytest.mark.parametrize(
    "line,found",
    [
        ("from galion.facts import PathExists\n", True),
        ("from galion.facts import files\n", False),  # a domain module
        ("from galion.facts.files import PathExists\n", False),
    ],
)
def test_a_fact_imported_from_the_package_is_found(tmp_path, line, found):
    root = _tree(
        tmp_path,
        {"galion/facts/__init__.py": "", "galion/facts/files.py": "", "operations/x.py": line},
    )
    assert bool(package_imports(root, "galion.facts", [root / "operations/x.py"])) is found
