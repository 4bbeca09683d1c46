"""The runner agent: jobs sized to resources, run under a journaling shim (seed 001).

The hub imports the pure parts (:mod:`backend.runner.resources`,
:mod:`backend.runner.inventory`), so this package loads the role lazily: importing it
must not pull in the agent session (which imports the hub).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.runner.runner import Runner, RunnerConfig

__all__ = ["Runner", "RunnerConfig", "service_files"]


def __getattr__(name: str) -> Any:
    if name == "service_files":
        return importlib.import_module("backend.runner.service_files")
    if name in __all__:
        from backend.runner import runner

        return getattr(runner, name)
    raise AttributeError(name)
