"""The flows every node ships with, as examples of the flow API (``docs/flows.md``).

- ``hello``: no lock of its own; launched with its inputs it runs straight through,
  launched without them it starts locked, demanding them.
- ``fan-out``: runs ``hello`` on another node N times and gathers the results (nested
  runs; each child shows in this run's state).
- ``approve-render``: reserves an audio task, renders it, measures its integrated
  loudness, and asks the operator to approve it or give a gain change; re-renders until
  approved and returns the file.
- ``echo`` and ``count``: the smallest flows, for trying the API.
"""

from __future__ import annotations

import asyncio
import copy
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from backend.node.context import Context
from backend.node.flows import Flow, flow


class EchoInputs(BaseModel):
    text: str = Field(description="what the flow returns")


@flow("echo", "Return the text it was given; the smallest possible flow.", EchoInputs)
async def echo(ctx: Context, inputs: EchoInputs) -> str:
    return inputs.text


class CountInputs(BaseModel):
    to: int = Field(ge=1, le=1000, description="count from 1 to this number")
    delay_s: float = Field(default=0.1, ge=0, le=10, description="pause between steps")


@flow("count", "Count to a number, reporting progress at each step.", CountInputs)
async def count(ctx: Context, inputs: CountInputs) -> int:
    for i in range(1, inputs.to + 1):
        ctx.progress(i / inputs.to)
        await asyncio.sleep(inputs.delay_s)
    return inputs.to


class HelloInputs(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="who to greet")


@flow("hello", "Greet someone by name. Without inputs it starts locked, asking for the name.",
      HelloInputs)
async def hello(ctx: Context, inputs: HelloInputs) -> str:
    ctx.log(f"greeting {inputs.name}")
    ctx.progress(1.0)
    return f"Hello, {inputs.name}!"


class FanOutInputs(BaseModel):
    node: str | None = Field(default=None, description="node to run hello on "
                             "(default: this node)")
    count: int = Field(default=3, ge=1, le=100, description="how many hello runs")
    name: str = Field(default="world", min_length=1, description="the name, numbered")


@flow("fan-out", "Run hello on another node N times at once and gather the results.",
      FanOutInputs)
async def fan_out(ctx: Context, inputs: FanOutInputs) -> list[Any]:
    done = 0

    async def one(i: int) -> Any:
        nonlocal done
        result = await ctx.run("hello", {"name": f"{inputs.name} {i}"}, node=inputs.node)
        done += 1
        ctx.progress(done / inputs.count, f"{done} of {inputs.count}")
        return result

    return list(await asyncio.gather(*(one(i) for i in range(1, inputs.count + 1))))


class ApproveRenderInputs(BaseModel):
    spec: dict[str, Any] = Field(description="an audio task spec (POST /api/v1/tasks)")
    format: str = Field(default="wav24", pattern="^(wav24|float32)$")
    max_rounds: int = Field(default=5, ge=1, le=20, description="renders before giving up")


class Approval(BaseModel):
    approve: bool = Field(description="true: keep this render")
    gain_db: float = Field(default=0.0, ge=-24, le=24,
                           description="if not approved: change the master gain by this")


def _with_gain(spec: dict[str, Any], gain_db: float) -> dict[str, Any]:
    changed = copy.deepcopy(spec)
    mix = changed.setdefault("mix", {})
    mix["master_gain_db"] = round(float(mix.get("master_gain_db", 0.0)) + gain_db, 3)
    return changed


@flow("approve-render", "Reserve an audio task, render it, measure its loudness (EBU R128) "
      "and ask the operator to approve it or change the gain; returns the file.",
      ApproveRenderInputs)
async def approve_render(ctx: Context, inputs: ApproveRenderInputs) -> dict[str, Any]:
    from backend.node.loudness import file_loudness

    spec = inputs.spec
    workdir = Path(ctx.workdir or ".")
    for round_ in range(1, inputs.max_rounds + 1):
        task = await ctx.hub.reserve(spec)
        task_id = str(task["id"])
        await ctx.hub.wait_task(task_id)
        ctx.log(f"round {round_}: task {task_id} ready, rendering")
        render_id = await ctx.hub.render(task_id, inputs.format)
        await ctx.hub.wait_render(
            task_id, render_id,
            on_progress=lambda p, r=round_: ctx.progress(p, f"rendering (round {r})"))
        path = await ctx.hub.download(task_id, render_id, workdir / f"render-{round_}.wav")
        lufs = await asyncio.to_thread(file_loudness, str(path))
        shown = "silence" if math.isinf(lufs) else f"{lufs:.1f} LUFS"
        ctx.log(f"round {round_}: integrated loudness {shown}")
        answer: Approval = await ctx.lock(
            f"Render {round_} reads {shown} integrated (EBU R128). Approve it, or give a "
            "gain change in dB to render again.", schema=Approval,
            check=lambda a: None if a.approve or a.gain_db != 0 else
            "not approved: give a non-zero gain_db to render again")
        if answer.approve:
            return {
                "task": task_id, "render_id": render_id, "lufs": None if math.isinf(lufs)
                else round(lufs, 2), "file": str(path),
                "url": f"{ctx.hub.base_url}/api/v1/tasks/{task_id}/renders/{render_id}/file",
                "rounds": round_, "master_gain_db": spec.get("mix", {}).get("master_gain_db",
                                                                           0.0),
            }
        await ctx.hub.release(task_id)
        spec = _with_gain(spec, answer.gain_db)
    raise RuntimeError(f"not approved after {inputs.max_rounds} renders")


BUILTIN: list[Flow] = [echo, count, hello, fan_out, approve_render]
