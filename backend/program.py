"""How Control Room starts another process of itself, from the sources or frozen.

The program starts its own processes: the supervisor's agents, the node's flow workers,
the runner's job shims and render jobs. From the sources each is ``python -m MODULE``;
a PyInstaller bundle has no ``python`` and no ``-m``, only its two executables. So every
such start goes through :func:`command`, and the bundle's console executable accepts
``-m MODULE`` for the short list of :data:`INTERNAL` modules (``app/entry.py`` does the
dispatch). The windowed executable never starts itself: it has no stdout for a child to
inherit, and on Windows and macOS it is a GUI application; children are always the
console executable beside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["INTERNAL", "command", "console_executable", "frozen", "resource", "root"]

#: The modules a frozen console executable runs for ``-m MODULE``: the program itself and
#: the entry points of the processes it starts. Anything else is refused, so the frozen
#: executable is not a general Python interpreter.
INTERNAL = (
    "app.main",
    "backend.node.worker",
    "backend.runner.render_job",
    "backend.runner.shim",
)


def frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def console_name() -> str:
    """The console executable's file name in the bundle.

    ``controlroom`` beside the windowed ``ControlRoom`` on Linux; Windows and macOS file
    systems ignore case, so there the console one is ``controlroom-cli``.
    """
    if sys.platform == "win32":
        return "controlroom-cli.exe"
    if sys.platform == "darwin":
        return "controlroom-cli"
    return "controlroom"


def console_executable() -> str:
    """The executable that runs headless modes: the bundle's console one, or Python."""
    if not frozen():
        return sys.executable
    return os.fspath(Path(sys.executable).resolve().with_name(console_name()))


def command(module: str, *args: str) -> list[str]:
    """The argv that runs ``module`` (one of :data:`INTERNAL`) with ``args``.

    ``app.main`` frozen is the console executable itself, so its argv reads as a user
    would type it (``controlroom agent engine ...``): that is what ``ps`` shows and what
    a service file runs.
    """
    if module not in INTERNAL:
        raise ValueError(f"{module} is not one of the program's entry points {INTERNAL}")
    if not frozen():
        return [sys.executable, "-m", module, *args]
    if module == "app.main":
        return [console_executable(), *args]
    return [console_executable(), "-m", module, *args]


def root() -> Path:
    """Where the program's files are: the source tree, or the bundle's unpacked data."""
    base = getattr(sys, "_MEIPASS", None)
    return Path(base) if base else Path(__file__).resolve().parent.parent


def resource(relative: str) -> Path:
    """A file under ``resources/`` (icons, schemas, example specs), frozen or not."""
    return root() / "resources" / relative
