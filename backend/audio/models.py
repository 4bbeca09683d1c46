"""The registry of instance models: which names exist, their defaults and parameter schemas.

The engine and the instance drivers build instances only from here, so both sides run the
same code for the same name. The hub uses it (through ``spec.TaskSpec``, whose instance
entries are tagged by ``model``) to refuse an unknown model or bad parameters before a
task is reserved, with a message that names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from backend.audio.compressor import Compressor
from backend.audio.eq import Eq
from backend.audio.errors import UnknownModelError
from backend.audio.gain import Gain
from backend.audio.instance import Model, Params, validate_params
from backend.audio.saturator import Saturator


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: its class, parameter type and a line for an operator."""

    name: str
    model_type: type[Model[Any]]
    description: str

    @property
    def params_type(self) -> type[Params]:
        return self.model_type.params_type

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default value."""
        return self.params_type().model_dump(mode="json")

    def params_schema(self) -> dict[str, Any]:
        """JSON Schema of the parameters (ranges, defaults, descriptions)."""
        return self.params_type.model_json_schema()


MODELS: Mapping[str, ModelInfo] = MappingProxyType({
    info.name: info for info in (
        ModelInfo("gain", Gain, "trim in dB"),
        ModelInfo("eq", Eq, "parametric EQ: peaking and shelving RBJ biquads"),
        ModelInfo("compressor", Compressor, "feed-forward stereo-linked compressor"),
        ModelInfo("saturator", Saturator, "tape-style tanh soft clip with compensation"),
    )
})
"""Every model by name."""


def model_info(name: str) -> ModelInfo:
    """The registered model ``name``, or ``UnknownModelError`` listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise UnknownModelError(f"unknown instance model {name!r} (known: {known})") from None


def check_params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` completed with defaults and validated; ``ParamError`` names bad fields."""
    info = model_info(model)
    return validate_params(model, info.params_type, params).model_dump(mode="json")


def create_instance(model: str, sample_rate: int,
                    params: Mapping[str, Any] | Params | None = None) -> Model[Any]:
    """A new instance of ``model`` at ``sample_rate`` with ``params`` (defaults if None)."""
    return model_info(model).model_type(sample_rate, params)
