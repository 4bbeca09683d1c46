"""Flows: named, described async functions with a pydantic inputs model.

This module is the catalog side (what a node offers); :mod:`backend.node.worker` runs a
flow in its own process and hands it a :class:`~backend.node.context.Context`
(``docs/flows.md`` is the guide). A flow is declared with :func:`flow`::

    class Inputs(BaseModel):
        text: str

    @flow("echo", "Return the text it was given.", Inputs)
    async def echo(ctx, inputs: Inputs) -> str:
        return inputs.text

Each catalog entry remembers its **origin** (``module:NAME`` or ``file:PATH``), which is
all a worker process needs to import the flow again without loading the whole catalog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

FlowFunction = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Flow:
    name: str
    description: str
    inputs: type[BaseModel]
    run: FlowFunction
    origin: str = ""

    def catalog_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputs_schema": self.inputs.model_json_schema(),
        }


def flow(
    name: str, description: str, inputs: type[BaseModel]
) -> Callable[[FlowFunction], Flow]:
    """Declare a flow; the decorated function becomes a :class:`Flow`."""

    def wrap(fn: FlowFunction) -> Flow:
        return Flow(name=name, description=description, inputs=inputs, run=fn)

    return wrap


class Catalog:
    """The flows one node offers, by name."""

    def __init__(self, flows: Iterable[Flow] = ()) -> None:
        self._flows: dict[str, Flow] = {}
        for f in flows:
            self.add(f)

    def add(self, f: Flow) -> None:
        if f.name in self._flows:
            raise ValueError(f"two flows are named {f.name!r}")
        self._flows[f.name] = f

    def __len__(self) -> int:
        return len(self._flows)

    def names(self) -> list[str]:
        return sorted(self._flows)

    def get(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def entries(self) -> list[dict[str, Any]]:
        return [self._flows[n].catalog_entry() for n in sorted(self._flows)]
