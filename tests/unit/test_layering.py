"""The house rules on imports: the device model knows nothing of SMP, and neither the SMP core
nor the device model does I/O, threads, event loops or sleeps (architecture.md, rule 1)."""

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


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, ``from x import y`` as x.y."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
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
