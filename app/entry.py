"""The bundle's entry point: both frozen executables start here.

``multiprocessing.freeze_support()`` comes first: the render workers' forkserver and its
resource tracker are started as this executable with ``-c ...`` arguments, and PyInstaller's
``freeze_support`` runs them and exits. Then ``-m MODULE ARGS`` runs one of the program's
internal entry points (:data:`backend.program.INTERNAL`), exactly as ``python -m`` does
from the sources; anything else is the ``controlroom`` command line.

The windowed executable has no terminal: an exception that escapes ``main`` there would
end the process with nobody told, so :func:`app.crash.report` shows it in a dialog with
the log file's path.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    multiprocessing.freeze_support()
    argv = sys.argv[1:]
    if argv[:1] == ["-m"]:
        return _run_module(argv[1:])
    from app import crash
    from app.main import main as controlroom

    try:
        return controlroom(argv)
    except SystemExit:
        raise
    except BaseException as exc:
        crash.report(exc)
        return 1


def _run_module(argv: list[str]) -> int:
    from backend.program import INTERNAL

    if not argv or argv[0] not in INTERNAL:
        print(f"controlroom: -m takes one of {', '.join(INTERNAL)}", file=sys.stderr)
        return 2
    module = argv[0]
    sys.argv = [module, *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
