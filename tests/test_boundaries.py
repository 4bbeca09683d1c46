"""The architecture's first rule: the backend (and the headless modes) never import Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QTBLOCK = str(ROOT / "tests" / "qtblock.py")

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
