"""The registry of instance models: which names exist, their defaults and parameter schemas.

The engine and the instance drivers build instances only from here, so both sides run the
same code for the same name. The hub uses it (through ``spec.TaskSpec``, whose instance
entries are tagged by ``model``) to refuse an unknown model or bad parameters before a
task is reserved, with a message that names the field.

Each model also carries how a console shows its parameters (:class:`ParamDisplay`: label,
unit, log scale, decimals). Ranges, defaults and choices are not repeated there: they
come from the model's own parameter schema, so :meth:`ModelInfo.controls` can never offer
a value the hub would refuse as out of range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from backend.audio.compressor import Compressor
from backend.audio.eq import Eq
from backend.audio.errors import UnknownModelError
from backend.audio.gain import Gain
from backend.audio.instance import Model, Params, validate_params
from backend.audio.saturator import Saturator


@dataclass(frozen=True)
class ParamDisplay:
    """How an operator sees one parameter; keyed by name (``bands.freq_hz`` inside a list)."""

    label: str
    unit: str = ""
    #: Frequencies, times and ratios are heard on a log scale; a slider should move that way.
    log: bool = False
    decimals: int = 1


@dataclass(frozen=True)
class ParamControl:
    """One scalar parameter as a control: range, default and choices from the schema."""

    name: str
    label: str
    kind: Literal["number", "integer", "boolean", "choice"]
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    log: bool = False
    decimals: int = 1
    choices: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ParamList:
    """A parameter that is a list of like items (the EQ's bands), each with its controls.

    The whole list is one parameter: a change sends the complete list.
    """

    name: str
    label: str
    item: tuple[ParamControl, ...]
    max_items: int | None = None
    description: str = ""

    def new_item(self) -> dict[str, Any]:
        """An item with every field at its default, as "add a band" should start."""
        return {control.name: control.default for control in self.item}


_NO_DISPLAY: Mapping[str, ParamDisplay] = MappingProxyType({})


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: its class, parameter type and a line for an operator."""

    name: str
    model_type: type[Model[Any]]
    description: str
    #: Labels, units and scales by parameter name; left out of ``==`` and ``hash``.
    display: Mapping[str, ParamDisplay] = field(default_factory=lambda: _NO_DISPLAY,
                                                compare=False)

    @property
    def params_type(self) -> type[Params]:
        return self.model_type.params_type

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default value."""
        return self.params_type().model_dump(mode="json")

    def params_schema(self) -> dict[str, Any]:
        """JSON Schema of the parameters (ranges, defaults, descriptions)."""
        return self.params_type.model_json_schema()

    def controls(self) -> tuple[ParamControl | ParamList, ...]:
        """Every parameter as a console control, in the schema's order."""
        schema = self.params_schema()
        definitions = schema.get("$defs", {})
        out: list[ParamControl | ParamList] = []
        for name, prop in schema.get("properties", {}).items():
            items = prop.get("items")
            if prop.get("type") == "array" and isinstance(items, dict) and "$ref" in items:
                item = definitions[items["$ref"].rsplit("/", 1)[-1]]
                shown = self.display.get(name) or ParamDisplay(_title(name))
                out.append(ParamList(
                    name, shown.label,
                    tuple(self._control(f"{name}.{key}", key, sub)
                          for key, sub in item.get("properties", {}).items()),
                    prop.get("maxItems"), str(prop.get("description", ""))))
            else:
                out.append(self._control(name, name, prop))
        return tuple(out)

    def _control(self, key: str, name: str, prop: Mapping[str, Any]) -> ParamControl:
        shown = self.display.get(key) or ParamDisplay(_title(name))
        choices = tuple(str(c) for c in prop.get("enum", ()))
        kind: Literal["number", "integer", "boolean", "choice"]
        if choices:
            kind = "choice"
        elif prop.get("type") == "boolean":
            kind = "boolean"
        elif prop.get("type") == "integer":
            kind = "integer"
        else:
            kind = "number"
        low, high = prop.get("minimum"), prop.get("maximum")
        return ParamControl(
            name=name, label=shown.label, kind=kind, default=prop.get("default"),
            minimum=None if low is None else float(low),
            maximum=None if high is None else float(high),
            unit=shown.unit, log=shown.log and low is not None and float(low) > 0,
            decimals=0 if kind == "integer" else shown.decimals, choices=choices,
            description=str(prop.get("description", "")),
        )


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


MODELS: Mapping[str, ModelInfo] = MappingProxyType({
    info.name: info for info in (
        ModelInfo("gain", Gain, "trim in dB", MappingProxyType({
            "gain_db": ParamDisplay("Gain", "dB"),
        })),
        ModelInfo("eq", Eq, "parametric EQ: peaking and shelving RBJ biquads", MappingProxyType({
            "bands": ParamDisplay("Band"),
            "bands.type": ParamDisplay("Type"),
            "bands.freq_hz": ParamDisplay("Frequency", "Hz", log=True, decimals=0),
            "bands.gain_db": ParamDisplay("Gain", "dB"),
            "bands.q": ParamDisplay("Q", log=True, decimals=2),
        })),
        ModelInfo("compressor", Compressor, "feed-forward stereo-linked compressor",
                  MappingProxyType({
                      "threshold_db": ParamDisplay("Threshold", "dBFS"),
                      "ratio": ParamDisplay("Ratio", ":1", log=True),
                      "attack_ms": ParamDisplay("Attack", "ms", log=True),
                      "release_ms": ParamDisplay("Release", "ms", log=True, decimals=0),
                      "makeup_db": ParamDisplay("Makeup", "dB"),
                      "knee_db": ParamDisplay("Knee", "dB"),
                  })),
        ModelInfo("saturator", Saturator, "tape-style tanh soft clip with compensation",
                  MappingProxyType({
                      "drive_db": ParamDisplay("Drive", "dB"),
                      "mix": ParamDisplay("Mix (wet)", decimals=2),
                  })),
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
