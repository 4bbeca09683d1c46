"""The audio core: task spec, sources, instance models, the mix graph, meters and render.

Pure computation on numpy/scipy/soundfile: no Qt, no asyncio, no sockets. The audio engine
agent builds a ``Graph`` from a validated ``TaskSpec`` and either paces ``next_block`` in
real time (play) or calls ``render`` in a worker thread; instance drivers host *fixed*
instances by running the same models (``create_instance``) on the blocks the engine sends.
``docs/audio.md`` describes the signal flow, the formulas and the guarantees.
"""

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
from backend.audio.render import RenderResult, render
from backend.audio.spec import InstanceSpec, TaskSpec, parse_task_spec, task_spec_schema
from backend.audio.wavfile import RenderFormat, WavWriter

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
    "WavWriter",
    "balance_gains",
    "check_params",
    "create_instance",
    "model_info",
    "pan_gains",
    "parse_task_spec",
    "render",
    "task_spec_schema",
]
