"""The audio core: task spec, sources, instance models, the mix graph, meters and render.

Pure computation on numpy/scipy/soundfile: no Qt, no asyncio, no sockets. The audio engine
agent builds a ``Graph`` from a validated ``TaskSpec`` and either paces ``next_block`` in
real time (play) or calls ``render`` in a worker thread; instance drivers host *fixed*
instances by running the same models (``create_instance``) on the blocks the engine sends.
``docs/audio.md`` describes the signal flow, the formulas and the guarantees.
"""

import importlib
from typing import TYPE_CHECKING, Any

#: Where each public name lives. Loaded on first use (PEP 562): the hub needs the spec but
#: not the DSP, and ``scipy.signal`` alone costs most of a second to import.
_WHERE = {
    "AudioError": "backend.audio.errors",
    "BlockError": "backend.audio.errors",
    "Graph": "backend.audio.graph",
    "Instance": "backend.audio.instance",
    "InstanceError": "backend.audio.errors",
    "InstanceFactory": "backend.audio.graph",
    "InstanceSpec": "backend.audio.spec",
    "MODELS": "backend.audio.models",
    "Meter": "backend.audio.meters",
    "MeterReading": "backend.audio.meters",
    "Model": "backend.audio.instance",
    "ModelInfo": "backend.audio.models",
    "ParamError": "backend.audio.errors",
    "RenderFormat": "backend.audio.render",
    "RenderResult": "backend.audio.render",
    "SourceError": "backend.audio.errors",
    "TaskSpec": "backend.audio.spec",
    "UnknownModelError": "backend.audio.errors",
    "balance_gains": "backend.audio.pan",
    "check_params": "backend.audio.models",
    "create_instance": "backend.audio.models",
    "model_info": "backend.audio.models",
    "pan_gains": "backend.audio.pan",
    "parse_task_spec": "backend.audio.spec",
    "render": "backend.audio.render",
    "task_spec_schema": "backend.audio.spec",
}

if TYPE_CHECKING:
    from backend.audio.errors import (
        AudioError,
        BlockError,
        InstanceError,
        ParamError,
        SourceError,
        UnknownModelError,
    )
    from backend.audio.graph import Graph, InstanceFactory
    from backend.audio.instance import Instance, Model
    from backend.audio.meters import Meter, MeterReading
    from backend.audio.models import MODELS, ModelInfo, check_params, create_instance, model_info
    from backend.audio.pan import balance_gains, pan_gains
    from backend.audio.render import RenderFormat, RenderResult, render
    from backend.audio.spec import InstanceSpec, TaskSpec, parse_task_spec, task_spec_schema


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'backend.audio' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "MODELS",
    "AudioError",
    "BlockError",
    "Graph",
    "Instance",
    "InstanceError",
    "InstanceFactory",
    "InstanceSpec",
    "Meter",
    "MeterReading",
    "Model",
    "ModelInfo",
    "ParamError",
    "RenderFormat",
    "RenderResult",
    "SourceError",
    "TaskSpec",
    "UnknownModelError",
    "balance_gains",
    "check_params",
    "create_instance",
    "model_info",
    "pan_gains",
    "parse_task_spec",
    "render",
    "task_spec_schema",
]
