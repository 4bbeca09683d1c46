"""Flows the node's integration tests load with ``--flows``: misbehaving ones included."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import BaseModel, Field

from backend.node import Context, flow


class Nothing(BaseModel):
    pass


class CrashInputs(BaseModel):
    code: int = 3


@flow("crash", "Write to stderr, then end the worker process with an exit code.", CrashInputs)
async def crash(ctx: Context, inputs: CrashInputs) -> None:
    ctx.log("about to crash")
    await asyncio.sleep(0.2)  # let the log event be committed first
    print("segfault-ish: the flow brought its process down", file=sys.stderr, flush=True)
    os._exit(inputs.code)


@flow("fail", "Raise an exception.", Nothing)
async def fail(ctx: Context, inputs: Nothing) -> None:
    raise ValueError("the flow failed on purpose")


class SleepInputs(BaseModel):
    seconds: float = 60.0


@flow("sleep", "Sleep, reporting progress every 0.1 s.", SleepInputs)
async def sleep(ctx: Context, inputs: SleepInputs) -> str:
    steps = max(1, int(inputs.seconds / 0.1))
    for i in range(steps):
        ctx.progress(i / steps)
        await asyncio.sleep(0.1)
    return "slept"


class ChattyInputs(BaseModel):
    events: int = Field(default=300, ge=1, le=100_000)
    every_s: float = 0.005


@flow("chatty", "Emit many log events at a steady pace.", ChattyInputs)
async def chatty(ctx: Context, inputs: ChattyInputs) -> int:
    for i in range(inputs.events):
        ctx.log(f"line {i}")
        if inputs.every_s:
            await asyncio.sleep(inputs.every_s)
    return inputs.events


class Level(BaseModel):
    gain_db: float = Field(ge=-24, le=24)


class GateInputs(BaseModel):
    release_timeout: float = 5.0
    no_candidate_timeout: float = 60.0
    default: float | None = None


@flow("gate", "Lock for a gain; deny positive gains; return the accepted one.", GateInputs)
async def gate(ctx: Context, inputs: GateInputs) -> Any:
    kwargs: dict[str, Any] = {}
    if inputs.default is not None:
        kwargs["default"] = Level(gain_db=inputs.default)
    answer = await ctx.lock(
        "Give a gain (not positive)", schema=Level,
        release_timeout=inputs.release_timeout,
        no_candidate_timeout=inputs.no_candidate_timeout,
        check=lambda level: "positive gain would clip" if level.gain_db > 0 else None,
        **kwargs,
    )
    return {"gain_db": answer.gain_db}


class IgnoreInputs(BaseModel):
    release_timeout: float = 0.5


@flow("ignore", "Take candidates and never answer them.", IgnoreInputs)
async def ignore(ctx: Context, inputs: IgnoreInputs) -> None:
    lock = ctx.open_lock("Say anything", release_timeout=inputs.release_timeout)
    async for candidate in lock.candidates():
        ctx.log(f"ignoring {candidate.cid}")


class NestInputs(BaseModel):
    node: str
    flow: str = "gate"
    inputs: dict[str, Any] = Field(default_factory=dict)


@flow("nest", "Run a flow on another node and return its result.", NestInputs)
async def nest(ctx: Context, inputs: NestInputs) -> Any:
    return await ctx.run(inputs.flow, inputs.inputs, node=inputs.node)
