"""Flows the node benchmarks load with ``--flows``."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from backend.node import Context, flow


class BurstInputs(BaseModel):
    events: int = Field(ge=1, le=10_000_000)


@flow("burst", "Emit N log events as fast as the flow can.", BurstInputs)
async def burst(ctx: Context, inputs: BurstInputs) -> int:
    for i in range(inputs.events):
        ctx.log(f"event {i}")
    return inputs.events


class TickInputs(BaseModel):
    events: int = 500
    every_s: float = 0.01


@flow("tick", "Emit progress events carrying the wall time they were emitted at.", TickInputs)
async def tick(ctx: Context, inputs: TickInputs) -> int:
    import asyncio

    for i in range(inputs.events):
        ctx.progress(i / inputs.events, repr(time.time()))
        await asyncio.sleep(inputs.every_s)
    return inputs.events


class Approval(BaseModel):
    ok: bool


class NoInputs(BaseModel):
    pass


@flow("await-approval", "Wait on one lock, then finish.", NoInputs)
async def await_approval(ctx: Context, inputs: NoInputs) -> bool:
    answer = await ctx.lock("Approve?", schema=Approval, release_timeout=120)
    return bool(answer.ok)
