"""Make Qt unimportable in this interpreter: ``python tests/qtblock.py -m module args``.

Used to prove that the headless and agent modes, and every backend module, run on a
machine with no Qt at all.
"""

from __future__ import annotations

import importlib.abc
import runpy
import sys

BLOCKED = ("PySide6", "shiboken6", "qasync", "pyqtgraph", "PyQt5", "PyQt6")


class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked: this mode must not import Qt")
        return None


def install() -> None:
    sys.meta_path.insert(0, BlockQt())


if __name__ == "__main__":
    # Run from the repository root, not from tests/ (whose tests/backend would shadow).
    sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    install()
    if sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [module, *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        code = sys.argv[2]
        sys.argv = ["-c", *sys.argv[3:]]
        exec(compile(code, "<qtblock>", "exec"), {"__name__": "__main__"})
