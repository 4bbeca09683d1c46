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
from backend.audio.graph import Graph, InstanceFactory, offline_block
from backend.audio.instance import Instance, Model
from backend.audio.meters import Meter, MeterReading
from backend.audio.models import (
    MODELS,
    ModelInfo,
    ParamControl,
    ParamList,
    check_params,
    create_instance,
    model_info,
)
from backend.audio.output import Device, NullSink, Sink, open_sink, output_devices
from backend.audio.pan import balance_gains, pan_gains
from backend.audio.render import RenderResult, render
from backend.audio.scipy_signal import preload as preload_filters
from backend.audio.spec import (
    InstanceSpec,
    TaskSpec,
    file_paths,
    media_hashes,
    parse_task_spec,
    task_spec_schema,
    with_media_hashes,
    with_media_paths,
)
from backend.audio.testmedia import write_test_media
from backend.audio.wavfile import RenderFormat, WavWriter
from backend.audio.workers import prewarm as prewarm_workers

__all__ = [
    "MODELS",
    "AudioError",
    "BlockError",
    "Device",
    "Graph",
    "Instance",
    "InstanceError",
    "InstanceFactory",
    "InstanceSpec",
    "Meter",
    "MeterReading",
    "Model",
    "ModelInfo",
    "NullSink",
    "ParamControl",
    "ParamError",
    "ParamList",
    "RenderFormat",
    "RenderResult",
    "Sink",
    "SourceError",
    "TaskSpec",
    "UnknownModelError",
    "WavWriter",
    "balance_gains",
    "check_params",
    "create_instance",
    "file_paths",
    "media_hashes",
    "model_info",
    "offline_block",
    "open_sink",
    "output_devices",
    "pan_gains",
    "parse_task_spec",
    "preload_filters",
    "prewarm_workers",
    "render",
    "task_spec_schema",
    "with_media_hashes",
    "with_media_paths",
    "write_test_media",
]
