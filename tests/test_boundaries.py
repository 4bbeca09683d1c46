"""The architecture's rules, checked on the source.

- ``backend`` (and the headless modes) never import Qt;
- ``ui`` never imports ``app`` (the window is composed by ``app``, never the reverse);
- no two project modules need each other, directly or around a loop, counting every
  import: those inside functions and under ``TYPE_CHECKING`` too, since hiding an import
  does not make two modules independent;
- ``ui`` and ``app`` use only what a backend package exports in its ``__all__``, so a
  backend package can rearrange its insides without touching the console;
- no tracked file cites a document the repository does not hold.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QTBLOCK = str(ROOT / "tests" / "qtblock.py")
PACKAGES = ("backend", "app", "ui")

IMPORT_ALL = """
import importlib, pkgutil, sys
import backend
names = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
for name in names:
    importlib.import_module(name)
import app.main, app.headless, app.agent, app.cli
loaded = [m for m in sys.modules if m.split(".")[0] in ("PySide6", "qasync", "pyqtgraph")]
assert not loaded, loaded
print(len(names))
"""


# -- the import graph ---------------------------------------------------------------------

def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import in the file, wherever it is.

    ``from pkg import x`` is an edge to ``pkg.x`` when that is a module, else to ``pkg``.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                yield (target if target in modules else base), node.lineno


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: {m for m, _ in imports_of(path, name, modules) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def exported(path: Path) -> set[str]:
    """The names in a module's literal ``__all__`` (empty if it has none)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {ast.literal_eval(e) for e in node.value.elts}  # type: ignore[attr-defined]
    return set()


# -- the rules ------------------------------------------------------------------------------

def test_every_backend_module_imports_without_qt() -> None:
    result = subprocess.run(
        [sys.executable, QTBLOCK, "-c", IMPORT_ALL], capture_output=True, text=True,
        cwd=ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 20  # the walk really found the modules


def test_the_blocker_really_blocks() -> None:
    result = subprocess.run(
        [sys.executable, QTBLOCK, "-c", "import PySide6"], capture_output=True, text=True,
        cwd=ROOT, timeout=60,
    )
    assert result.returncode != 0 and "blocked" in result.stderr


def test_no_backend_source_mentions_a_qt_import() -> None:
    offenders = []
    for path in (ROOT / "backend").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                q in stripped for q in ("PySide6", "qasync", "pyqtgraph", "shiboken6")
            ):
                offenders.append(f"{path}: {stripped}")
    assert offenders == []


def test_ui_never_imports_app() -> None:
    modules = project_modules(ROOT)
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {target}"
                 for name, path in modules.items() if name.split(".")[0] == "ui"
                 for target, line in imports_of(path, name, modules)
                 if target.split(".")[0] == "app"]
    assert offenders == []


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT)
    assert len(graph) > 100  # the walk really found the project
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_however_the_import_is_hidden(tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "__init__.py").write_text("")
    (tmp_path / "ui" / "a.py").write_text("from typing import TYPE_CHECKING\n"
                                          "if TYPE_CHECKING:\n    from ui.b import B\n")
    (tmp_path / "ui" / "b.py").write_text("def f():\n    from ui import a\n")
    (tmp_path / "ui" / "c.py").write_text("from . import a\n")
    for pkg in ("backend", "app"):
        (tmp_path / pkg).mkdir()
    assert cycles(import_graph(tmp_path)) == [["ui.a", "ui.b"]]


def test_ui_and_app_import_only_what_backend_packages_export() -> None:
    modules = project_modules(ROOT)
    offenders = []
    for name, path in modules.items():
        if name.split(".")[0] not in ("ui", "app"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.startswith("backend.")]
                offenders += [f"{name}:{node.lineno} import {b}" for b in bad]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "backend") and not node.level:
                module = node.module or ""
                if module.count(".") > 1:
                    offenders.append(f"{name}:{node.lineno} from {module} (reach into a "
                                     "package's insides)")
                    continue
                public = exported(modules[module])
                offenders += [f"{name}:{node.lineno} {module}.{a.name} is not in __all__"
                              for a in node.names if a.name not in public]
    assert offenders == []


CITED = re.compile(r"(?<![\w/.-])((?:\.\./)*[\w./-]*?[\w-]+\.md)\b")


def test_no_tracked_file_cites_a_document_the_repository_does_not_hold() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    names = {Path(t).name for t in tracked}
    offenders = []
    for relative in tracked:
        path = ROOT / relative
        if path.suffix not in (".py", ".md", ".toml", ".sh", ".txt", ".spec", ".cfg", "") \
                or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in CITED.finditer(text):
            cited = match.group(1)
            if cited.startswith("../") or Path(cited).name not in names:
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{relative}:{line} cites {cited}")
    assert offenders == []
