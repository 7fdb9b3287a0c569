"""The house rules on imports (docs/architecture.md): no import circles anywhere; profiles
(``config``) import nothing of the board; the device model knows nothing of SMP; neither the SMP
core nor the device model does I/O, threads, event loops or sleeps."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smpsim

PACKAGE = Path(smpsim.__file__).parent
BANNED = {"asyncio", "socket", "threading", "serial", "bless"}


def _sources(subpackage: str) -> list[Path]:
    files = sorted((PACKAGE / subpackage).rglob("*.py"))
    assert files, f"no sources under {subpackage}/"
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _statements(path: Path) -> list[tuple[str, list[str]]]:
    """Each import statement of ``path`` as (module, names): ``import a.b`` is ("a.b", []),
    ``from x import y, z`` is ("x", ["y", "z"]) with relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names]))
    return found


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, ``from x import y`` as x.y."""
    found: set[str] = set()
    for base, names in _statements(path):
        found.add(base)
        found.update(f"{base}.{name}" for name in names)
    return found


def _all_smpsim_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _closure(start: str, modules: dict[str, Path]) -> set[str]:
    """smpsim modules ``start`` loads, transitively, with the packages they live in.

    The root package ``smpsim`` is left out: it is the public API and re-exports everything.
    """
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(2, len(parts)))  # parent packages
        todo.extend(m for m in _imports(modules[name]) if m.startswith("smpsim"))
    return seen


def test_the_scanner_sees_imports() -> None:
    server = _imports(PACKAGE / "mcumgr" / "server.py")
    assert "smpsim.mcumgr.codec.encode" in server
    assert "logging" in server
    assert "smpsim.config" in _imports(PACKAGE / "device" / "mcu.py")


def _graph() -> dict[str, set[str]]:
    """smpsim module -> the smpsim modules it imports (``TYPE_CHECKING`` imports too: a circle
    drawn only for the type checker is still a circle for a reader)."""
    modules = _all_smpsim_modules()
    graph = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for base, names in _statements(path):
            # ``from package import module`` imports the module, not the package's face.
            edges.update(f"{base}.{n}" if f"{base}.{n}" in modules else base
                         for n in names or [""])
        graph[name] = {m for m in edges if m in modules and m != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_circles() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert _circles(_graph()) == []


@pytest.mark.parametrize("path", _sources("config"), ids=lambda p: p.name)
def test_config_imports_nothing_of_the_board(path: Path) -> None:
    layers = ("smpsim.mcumgr", "smpsim.device", "smpsim.transports", "smpsim.board")
    offending = {m for m in _imports(path) if m.startswith(layers)}
    assert not offending, f"{path.name} imports {sorted(offending)}"


@pytest.mark.parametrize("path", _sources("device"), ids=lambda p: p.name)
def test_device_never_imports_mcumgr(path: Path) -> None:
    offending = {m for m in _imports(path) if m == "smpsim.mcumgr" or
                 m.startswith("smpsim.mcumgr.")}
    assert not offending, f"{path.name} imports {sorted(offending)}"


@pytest.mark.parametrize("path", _sources("device"), ids=lambda p: p.name)
def test_device_reaches_no_smp_code_even_indirectly(path: Path) -> None:
    # device -> config -> mcumgr.catalog (the plain list of group and command names, which
    # profiles are checked against) is the one allowed path.
    reached = _closure(_module_name(path), _all_smpsim_modules())
    smp = {m for m in reached if m.startswith("smpsim.mcumgr.")}
    assert smp <= {"smpsim.config.catalog"}, f"{path.name} reaches {sorted(smp)}"


@pytest.mark.parametrize("path", _sources("mcumgr") + _sources("device"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_and_device_do_no_io(path: Path) -> None:
    imports = _imports(path)
    offending = {m for m in imports if m.split(".")[0] in BANNED}
    assert not offending, f"{path.name} imports {sorted(offending)}"
    assert "time.sleep" not in imports


@pytest.mark.parametrize("path", _sources("mcumgr") + _sources("device"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_and_device_never_sleep(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "sleep"]
    assert not calls, f"{path.name} calls sleep at line {calls[0].lineno}"
