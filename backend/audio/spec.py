"""The task spec: what an audio task plays or renders, validated before anything runs.

The hub validates a spec when a task is reserved and pushes it to the engine and to every
instance driver involved; the engine builds its ``Graph`` from it. Every model here uses
``extra="forbid"``, so a typo is a 422 that names the field instead of a silently ignored
setting. Instance entries are tagged by ``model``, so their ``params`` are validated by the
model's own schema (ranges, unknown names) with the full path in the error location, e.g.
``instances.eq1.eq.params.bands.0.freq_hz``. Cross-references are checked as a whole:
chains name declared instances, each instance sits in exactly one chain position, track
ids are unique. ``task_spec_schema()`` exports the JSON Schema for clients and docs.

What the spec cannot check without I/O (a file exists, its channel count, its length) is
checked when the engine opens the sources (``SourceError``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from backend.audio.compressor import CompressorParams
from backend.audio.eq import EqParams
from backend.audio.gain import GainParams
from backend.audio.saturator import SaturatorParams

SAMPLE_RATES = (44100, 48000, 88200, 96000)
MAX_DURATION_S = 24 * 3600.0

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                          description="1-64 letters, digits, _ . : - (starting alphanumeric)")]
Duration = Annotated[StrictFloat, Field(gt=0.0, le=MAX_DURATION_S, description="seconds")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sources -------------------------------------------------------------------------------

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$",
                              description="SHA-256 of the file's bytes, 64 lowercase hex digits")]


class FileSource(_Strict):
    """A WAV/FLAC/... file (anything libsndfile reads), mono or stereo, streamed in blocks
    and resampled if its rate differs from the task's. Named by ``path`` (a relative one is
    resolved against the engine's media directory) or by ``sha256``, the content hash of a
    file uploaded to the hub (``PUT /api/v1/media/{sha256}``), which an engine or runner
    fetches once and caches. With ``loop`` it repeats until the task ends."""

    type: Literal["file"]
    path: str | None = Field(default=None, min_length=1)
    sha256: Sha256 | None = None
    loop: StrictBool = False

    @model_validator(mode="after")
    def _one_name(self) -> FileSource:
        if (self.path is None) == (self.sha256 is None):
            raise PydanticCustomError(
                "file_name", "a file source needs exactly one of 'path' (a file the engine "
                "can read) or 'sha256' (media uploaded to the hub)")
        return self


class ToneSource(_Strict):
    """A mono sine; ``level_dbfs`` is its peak level (RMS is 3.01 dB lower)."""

    type: Literal["tone"]
    freq_hz: StrictFloat = Field(gt=0.0, le=20000.0)
    level_dbfs: StrictFloat = Field(ge=-120.0, le=0.0)
    duration_s: Duration


class NoiseSource(_Strict):
    """Mono white noise, uniform distribution; ``level_dbfs`` is its RMS level (peaks are
    4.77 dB higher). The same ``seed`` gives the same samples, always."""

    type: Literal["noise"]
    level_dbfs: StrictFloat = Field(ge=-120.0, le=0.0)
    seed: StrictInt = Field(ge=0, le=2**63 - 1)
    duration_s: Duration


class SilenceSource(_Strict):
    """Digital silence (mono)."""

    type: Literal["silence"]
    duration_s: Duration


SourceSpec = Annotated[FileSource | ToneSource | NoiseSource | SilenceSource,
                       Field(discriminator="type")]


class TrackSpec(_Strict):
    """One track: a source, its chain of instances (in order), then fader and pan."""

    id: Id
    source: SourceSpec
    gain_db: StrictFloat = Field(default=0.0, ge=-120.0, le=24.0)
    pan: StrictFloat = Field(default=0.0, ge=-1.0, le=1.0, description="-1 left .. +1 right")
    chain: tuple[Id, ...] = Field(default=(), description="instance ids, processed in this order")


# --- instances ---------------------------------------------------------------------------

class DriverLocation(_Strict):
    """A fixed instance: it lives on the instance driver ``driver``, which declares it under
    the same id as the key of this instance in ``TaskSpec.instances``."""

    driver: Id


Location = Annotated[Literal["dynamic"] | DriverLocation,
                     Field(description='"dynamic" (runs in the engine) or {"driver": NAME}')]


class GainInstance(_Strict):
    model: Literal["gain"]
    params: GainParams = GainParams()
    location: Location = "dynamic"


class EqInstance(_Strict):
    model: Literal["eq"]
    params: EqParams = EqParams()
    location: Location = "dynamic"


class CompressorInstance(_Strict):
    model: Literal["compressor"]
    params: CompressorParams = CompressorParams()
    location: Location = "dynamic"


class SaturatorInstance(_Strict):
    model: Literal["saturator"]
    params: SaturatorParams = SaturatorParams()
    location: Location = "dynamic"


InstanceSpec = Annotated[GainInstance | EqInstance | CompressorInstance | SaturatorInstance,
                         Field(discriminator="model")]


# --- the task ----------------------------------------------------------------------------

class MixSpec(_Strict):
    """The stereo mix bus."""

    master_gain_db: StrictFloat = Field(default=0.0, ge=-120.0, le=24.0)


def _iso_text(value: Any) -> Any:
    """A time as its document says: ISO-8601 text (pydantic would also take a number of
    seconds since 1970, which the schema does not promise and a typo could produce)."""
    if not isinstance(value, str | datetime.datetime):
        raise PydanticCustomError("datetime_type", "a time must be ISO-8601 text with a UTC "
                                  "offset, e.g. 2026-12-04T18:00:00Z")
    return value


#: A time with its UTC offset, given as ISO-8601 text.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class Window(_Strict):
    """The reservation window; both ends carry a UTC offset (ISO-8601)."""

    start: IsoTime
    end: IsoTime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise PydanticCustomError("window_order", "window.end must be after window.start")
        return self


#: A task an operator can reserve on any engine: two generated tracks, one through a
#: dynamic EQ (the document's example, and what its examples phase reserves).
EXAMPLE: dict[str, Any] = {
    "sample_rate": 48000, "block_size": 1024,
    "tracks": [
        {"id": "bass", "source": {"type": "tone", "freq_hz": 110, "level_dbfs": -12,
                                  "duration_s": 2}, "gain_db": -3, "chain": ["eq1"]},
        {"id": "air", "source": {"type": "noise", "level_dbfs": -30, "seed": 7,
                                 "duration_s": 2}, "pan": 0.5},
    ],
    "instances": {"eq1": {"model": "eq"}},
    "window": {"start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z"},
}


class TaskSpec(_Strict):
    """An audio task: tracks, instances, mix bus, sample rate, reservation window."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    sample_rate: Literal[44100, 48000, 88200, 96000]
    block_size: StrictInt = Field(default=1024, ge=64, le=8192, description="frames per block")
    tracks: tuple[TrackSpec, ...] = Field(min_length=1)
    instances: dict[Id, InstanceSpec] = Field(default_factory=dict)
    mix: MixSpec = MixSpec()
    duration_s: Duration | None = Field(default=None, description="default: the longest source")
    window: Window

    @model_validator(mode="after")
    def _references(self) -> TaskSpec:
        seen: dict[str, int] = {}
        for i, track in enumerate(self.tracks):
            if track.id in seen:
                raise PydanticCustomError(
                    "duplicate_track", "tracks[{i}].id: '{id}' is already used by tracks[{j}]",
                    {"i": i, "j": seen[track.id], "id": track.id})
            seen[track.id] = i
        used: dict[str, str] = {}
        for i, track in enumerate(self.tracks):
            for j, iid in enumerate(track.chain):
                if iid not in self.instances:
                    raise PydanticCustomError(
                        "unknown_instance",
                        "tracks[{i}].chain[{j}]: instance '{iid}' is not declared in instances",
                        {"i": i, "j": j, "iid": iid})
                if iid in used:
                    raise PydanticCustomError(
                        "instance_reused",
                        "tracks[{i}].chain[{j}]: instance '{iid}' is already in {where}; an "
                        "instance carries one signal path",
                        {"i": i, "j": j, "iid": iid, "where": used[iid]})
                used[iid] = f"tracks[{i}].chain[{j}]"
        idle = [iid for iid in self.instances if iid not in used]
        if idle:
            raise PydanticCustomError(
                "instance_unused",
                "instances.{iid}: declared but in no track's chain (a reservation would hold it "
                "for nothing)", {"iid": idle[0]})
        return self

    def fixed_instances(self) -> dict[str, str]:
        """Instance id -> driver name, for every instance that lives on a driver."""
        return {iid: inst.location.driver for iid, inst in self.instances.items()
                if isinstance(inst.location, DriverLocation)}

    def generator_duration_s(self) -> float | None:
        """The longest generator source (tone, noise, silence), None if every one is a file."""
        lengths = [t.source.duration_s for t in self.tracks
                   if not isinstance(t.source, FileSource)]
        return max(lengths) if lengths else None


def task_spec_schema() -> dict[str, Any]:
    """The JSON Schema of ``TaskSpec`` (draft 2020-12, as pydantic writes it)."""
    return TaskSpec.model_json_schema()


def parse_task_spec(data: str | bytes | Mapping[str, Any]) -> TaskSpec:
    """A ``TaskSpec`` from JSON text or a mapping; raises ``pydantic.ValidationError``.

    JSON text is checked for duplicate keys first: plain JSON parsers keep the last of two
    equal keys, which would silently drop an instance declared twice.
    """
    if isinstance(data, Mapping):
        return TaskSpec.model_validate(data)
    try:
        parsed = json.loads(data, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ValidationError.from_exception_data("TaskSpec", [{
            "type": PydanticCustomError(
                "duplicate_key", "duplicate key '{key}' in a JSON object; ids must be unique",
                {"key": exc.key}),
            "loc": (), "input": exc.key,
        }]) from None
    except ValueError:
        return TaskSpec.model_validate_json(data)  # pydantic reports where the JSON breaks
    return TaskSpec.model_validate(parsed)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def media_hashes(spec: TaskSpec) -> list[str]:
    """The content hashes a spec's file sources name, in track order, each once."""
    return _named(spec, lambda source: source.sha256)


def with_media_paths(spec: TaskSpec, paths: Mapping[str, str]) -> TaskSpec:
    """``spec`` with every source named by hash named instead by its local file in
    ``paths`` (hash -> path): what an engine or runner builds its graph from."""
    return _renamed(spec, lambda source: None if source.sha256 is None else FileSource(
        type="file", path=paths[source.sha256], loop=source.loop))


def file_paths(spec: TaskSpec) -> list[str]:
    """The paths a spec's file sources name, in track order, each once."""
    return _named(spec, lambda source: source.path)


def with_media_hashes(spec: TaskSpec, hashes: Mapping[str, str]) -> TaskSpec:
    """``spec`` with every source whose path is in ``hashes`` (path -> SHA-256) named
    instead by the hash: what a client sends once it uploaded those files to the hub, so
    any engine or runner can fetch them. Paths not in ``hashes`` stay as they are."""
    def rename(source: FileSource) -> FileSource | None:
        if source.path is None or source.path not in hashes:
            return None
        return FileSource(type="file", sha256=hashes[source.path], loop=source.loop)

    return _renamed(spec, rename)


def _named(spec: TaskSpec, name: Callable[[FileSource], str | None]) -> list[str]:
    found: dict[str, None] = {}
    for track in spec.tracks:
        if isinstance(track.source, FileSource) and (value := name(track.source)) is not None:
            found[value] = None
    return list(found)


def _renamed(spec: TaskSpec, rename: Callable[[FileSource], FileSource | None]) -> TaskSpec:
    """``spec`` with each file source ``rename`` returns a new one for replaced by it."""
    tracks = []
    for track in spec.tracks:
        source = track.source
        if isinstance(source, FileSource) and (renamed := rename(source)) is not None:
            track = track.model_copy(update={"source": renamed})
        tracks.append(track)
    return spec.model_copy(update={"tracks": tuple(tracks)})
