"""The shell builders of operations/, actions/ and galion/, found by reading their source (ast):
tests/unit/test_commands.py checks that each one is among the commands it checks.

A builder is a module-level function named `command` or ending in `_command`,
`_commands` or `_script`, or any module-level function or constant passed whole to a
call's `commands=`, `command=` or `validate=` (the shell arguments of pyinfra's
server.shell, of config_file and of one_host_at_a_time): in a list, joined, in an
`a if c else b`, called. Text written inline at the call (an f-string) is no builder."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHELL_ARGUMENTS = ("commands", "command", "validate")
SUFFIXES = ("_command", "_commands", "_script")


def _modules():
    for top in ("operations", "actions", "galion"):
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            yield ".".join(parts), path, is_package


class _Module:
    def __init__(self, name: str, path: Path, is_package: bool):
        self.name = name
        self.tree = ast.parse(path.read_text())
        package = name if is_package else name.rpartition(".")[0]
        self.defined: set[str] = set()
        self.imported: dict[str, str] = {}  # local name -> what it names, dotted
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.defined.add(node.name)
            elif isinstance(node, ast.Assign):
                self.defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.defined.add(node.target.id)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imported[local] = alias.name if alias.asname else local


def find() -> set[str]:
    """Every builder, as `module.name` of its definition."""
    modules = {name: _Module(name, path, pkg) for name, path, pkg in _modules()}

    def definition(module: str, name: str, depth: int = 0) -> str | None:
        """Where `name` as seen in `module` is defined (a function or constant of ours)."""
        m = modules.get(module)
        if m is None or depth > 5:
            return None
        if name in m.defined:
            return f"{module}.{name}"
        target = m.imported.get(name)
        if target is None or target in modules:
            return None
        source, _, attr = target.rpartition(".")
        return definition(source, attr, depth + 1)

    def module_named(module: str, name: str) -> str | None:
        target = modules[module].imported.get(name)
        return target if target in modules else None

    def refs(module: str, node) -> set[str]:
        found: set[str] = set()
        if isinstance(node, ast.Name):
            found.add(definition(module, node.id))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            source = module_named(module, node.value.id)
            if source:
                found.add(definition(source, node.attr))
        elif isinstance(node, ast.Call):
            found |= refs(module, node.func)
            if isinstance(node.func, ast.Attribute) and node.func.attr == "join":
                for arg in node.args:
                    found |= refs(module, arg)
        elif isinstance(node, ast.List | ast.Tuple | ast.Set):
            for elt in node.elts:
                found |= refs(module, elt)
        elif isinstance(node, ast.Starred):
            found |= refs(module, node.value)
        elif isinstance(node, ast.IfExp):
            found |= refs(module, node.body) | refs(module, node.orelse)
        elif isinstance(node, ast.BinOp):
            found |= refs(module, node.left) | refs(module, node.right)
        return found - {None}

    builders: set[str] = set()
    for name, m in modules.items():
        for node in m.tree.body:
            if isinstance(node, ast.FunctionDef) and (
                node.name == "command" or node.name.endswith(SUFFIXES)
            ):
                builders.add(f"{name}.{node.name}")
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg in SHELL_ARGUMENTS:
                        builders |= refs(name, keyword.value)
    return builders
