"""The flows every node ships with, as examples of the flow API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.node.flows import Flow, flow


class EchoInputs(BaseModel):
    text: str = Field(description="what the flow returns")


@flow("echo", "Return the text it was given; the smallest possible flow.", EchoInputs)
async def echo(ctx: Any, inputs: EchoInputs) -> str:
    return inputs.text


class CountInputs(BaseModel):
    to: int = Field(ge=1, le=1000, description="count from 1 to this number")
    delay_s: float = Field(default=0.1, ge=0, le=10, description="pause between steps")


@flow("count", "Count to a number, reporting progress at each step.", CountInputs)
async def count(ctx: Any, inputs: CountInputs) -> int:
    import asyncio

    for i in range(1, inputs.to + 1):
        ctx.progress(i / inputs.to)
        await asyncio.sleep(inputs.delay_s)
    return inputs.to


BUILTIN: list[Flow] = [echo, count]
