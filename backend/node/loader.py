"""Where flows come from: the built-in examples, ``--flows PATH`` and entry points.

A node's catalog is built once at start-up (:func:`load_catalog`). Every flow is stamped
with its origin so a worker process can import just that flow again
(:func:`resolve_flow`): ``module:backend.node.examples`` for importable modules (built-ins
and the ``controlroom.flows`` entry-point group) and ``file:/abs/path.py`` for files given
with ``--flows``. An entry point may name a :class:`Flow`, a list of flows, or a module
(every flow at its top level is taken).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from backend.node.flows import Catalog, Flow

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "controlroom.flows"
BUILTIN_MODULE = "backend.node.examples"


class FlowLoadError(Exception):
    """A flows file, module or entry point could not be loaded; the message says which."""


def _flows_in(obj: Any) -> list[Flow]:
    if isinstance(obj, Flow):
        return [obj]
    if isinstance(obj, ModuleType):
        found: list[Flow] = []
        for value in vars(obj).values():
            if isinstance(value, Flow) and value not in found:
                found.append(value)
        return found
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        return [f for f in obj if isinstance(f, Flow)]
    return []


def _stamp(flows: Iterable[Flow], origin: str) -> list[Flow]:
    return [dataclasses.replace(f, origin=origin) for f in flows]


def import_file(path: Path) -> ModuleType:
    """Import a ``.py`` file under a stable private module name."""
    path = path.resolve()
    name = "controlroom_flows_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FlowLoadError(f"cannot load flows from {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise FlowLoadError(f"cannot load flows from {path}: {type(exc).__name__}: {exc}") \
            from exc
    return module


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
    if path.is_file():
        return [path]
    raise FlowLoadError(f"--flows {path}: no such file or directory")


def load_catalog(paths: Sequence[Path] = (), use_entry_points: bool = True) -> Catalog:
    """Built-ins, then each ``--flows`` path, then the entry points; names must be unique."""
    catalog = Catalog()
    builtin = importlib.import_module(BUILTIN_MODULE)
    for f in _stamp(getattr(builtin, "BUILTIN", []), f"module:{BUILTIN_MODULE}"):
        catalog.add(f)
    for path in paths:
        for file in _files(path):
            module = import_file(file)
            for f in _stamp(_flows_in(module), f"file:{file.resolve()}"):
                _add(catalog, f, str(file))
    if use_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
            except Exception as exc:
                raise FlowLoadError(
                    f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}): "
                    f"{type(exc).__name__}: {exc}") from exc
            for f in _stamp(_flows_in(loaded), f"module:{ep.module}"):
                _add(catalog, f, f"entry point {ep.name}")
    return catalog


def _add(catalog: Catalog, f: Flow, source: str) -> None:
    try:
        catalog.add(f)
    except ValueError as exc:
        raise FlowLoadError(f"{source}: {exc}") from None


def resolve_flow(origin: str, name: str) -> Flow:
    """Import the flow ``name`` from where the catalog found it (in a worker process)."""
    kind, _, where = origin.partition(":")
    if kind == "module":
        module = importlib.import_module(where)
    elif kind == "file":
        module = import_file(Path(where))
    else:
        raise FlowLoadError(f"flow {name!r} has an unknown origin {origin!r}")
    candidates = _flows_in(module)
    for value in vars(module).values():
        if isinstance(value, list | tuple):
            candidates += _flows_in(value)
    for f in candidates:
        if f.name == name:
            return f
    raise FlowLoadError(f"flow {name!r} is no longer in {where}")
