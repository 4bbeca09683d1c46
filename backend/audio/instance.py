"""What an instance is to the graph: a stateful block processor with parameters.

The graph talks to every instance through the ``Instance`` protocol only, one block at a
time, in a fixed order. That is the seam the engine uses for *fixed* instances: a proxy
with the same five members forwards each block to the instance driver that hosts the
instance and returns the driver's answer. Because a driver runs the same ``Model`` code on
the same blocks in the same order, a remote instance's output is bit-identical to the same
model running in the engine (given the transport carries the float64 samples unchanged).

``Model`` is the base of the built-in models (gain, eq, compressor, saturator): it owns the
validated parameters (a pydantic model per model, ``extra="forbid"``), merges partial
updates, and turns validation failures into ``ParamError`` messages that name the field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from backend.audio.blocks import FloatBlock, as_block
from backend.audio.errors import ParamError


@runtime_checkable
class Instance(Protocol):
    """A block processor the graph can run: a built-in model or a proxy to a driver.

    ``process`` gets a ``(frames, 2)`` float block, must not modify it, and returns a new
    ``(frames, 2)`` float64 block of the same length. ``set_params`` applies a partial
    update (unknown names and out-of-range values raise ``ParamError``) and keeps the
    processing state, so a change mid-stream does not click. ``report`` returns the latest
    figures (e.g. ``{"gain_reduction_db": 4.2}``); it must be cheap and safe to call from
    another thread. ``reset`` clears the state (filter memories, envelopes) but keeps the
    parameters. A proxy whose ``process`` waits on another process sets a class attribute
    ``remote = True``; the graph then runs its track's chain on a helper thread, so the
    round trips of several such tracks overlap each other and the local tracks.
    """

    @property
    def params(self) -> dict[str, Any]: ...

    def process(self, block: npt.NDArray[Any]) -> FloatBlock: ...

    def set_params(self, params: Mapping[str, Any]) -> None: ...

    def report(self) -> dict[str, float]: ...

    def reset(self) -> None: ...


class Params(BaseModel):
    """Base of every model's parameters: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


def validate_params(model: str, params_type: type[P], values: Mapping[str, Any]) -> P:
    """``values`` validated as ``params_type``; a ``ParamError`` naming each bad field."""
    try:
        return params_type.model_validate(dict(values))
    except ValidationError as exc:
        raise ParamError(f"{model}: {describe_errors(exc, params_type)}") from None


def describe_errors(exc: ValidationError, params_type: type[BaseModel] | None = None) -> str:
    """One line per pydantic error, ``field.path: message``, with unknown names spelled out."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "params"
        if err["type"] == "extra_forbidden":
            known = ", ".join(params_type.model_fields) if params_type is not None else ""
            hint = f" (known: {known})" if known and len(err["loc"]) == 1 else ""
            lines.append(f"unknown parameter {where!r}{hint}")
        else:
            lines.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


class Model(ABC, Generic[P]):
    """A built-in instance model: validated parameters around a block-processing core."""

    name: ClassVar[str]
    params_type: ClassVar[type[Params]]
    #: True when the output's last bits depend on where blocks start (not just on the
    #: samples): the graph then keeps giving it the spec's blocks in an offline render.
    block_dependent: ClassVar[bool] = False

    def __init__(self, sample_rate: int, params: P | Mapping[str, Any] | None = None) -> None:
        self.sample_rate = sample_rate
        if params is None:
            params = {}
        if isinstance(params, Params):
            if not isinstance(params, self.params_type):
                raise ParamError(f"{self.name}: parameters of type {type(params).__name__} "
                                 f"given, {self.params_type.__name__} expected")
            values: P = params
        else:
            values = cast(P, validate_params(self.name, self.params_type, params))
        self._p: P = values
        self._configure(None, values)

    @property
    def params(self) -> dict[str, Any]:
        """The current parameters, every field present, as plain JSON-able values."""
        return self._p.model_dump(mode="json")

    @property
    def settings(self) -> P:
        """The current parameters as their typed model."""
        return self._p

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Apply a partial update; the state (filter memories, envelopes) carries on."""
        merged = {**self._p.model_dump(), **dict(params)}
        new = cast(P, validate_params(self.name, self.params_type, merged))
        old, self._p = self._p, new
        self._configure(old, new)

    def process(self, block: npt.NDArray[Any]) -> FloatBlock:
        """The processed block (new float64 array); the input is left untouched."""
        x = as_block(block)
        if x.shape[0] == 0:
            return np.zeros((0, 2))
        return self._process(x)

    def report(self) -> dict[str, float]:
        """Latest figures worth showing an operator; none by default."""
        return {}

    def reset(self) -> None:
        """Forget the processing state, keep the parameters."""
        self._configure(None, self._p)

    @abstractmethod
    def _configure(self, old: P | None, new: P) -> None:
        """Derive coefficients from ``new``; ``old`` is None on creation and reset."""

    @abstractmethod
    def _process(self, block: FloatBlock) -> FloatBlock:
        """Process a non-empty, validated block."""
