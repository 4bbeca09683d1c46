"""The audio task routes under ``/api/v1/tasks``.

A task's view carries ``commands``: what the hub accepts for it in its current state, so a
client enables exactly those instead of keeping its own copy of the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, WebSocket
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator
from starlette.websockets import WebSocketDisconnect

from backend.audio.spec import TaskSpec
from backend.hub.access import Need
from backend.hub.auth import require
from backend.hub.tasks.service import TaskError, TaskService
from backend.protocol import NAME_PATTERN

TaskId = Annotated[str, Path(pattern=r"^t_[0-9a-f]{12}$", description="a task id")]
RenderId = Annotated[str, Path(pattern=r"^r_[0-9a-f]{12}$", description="a render id")]
InstanceId = Annotated[str, Path(pattern=NAME_PATTERN, description="an instance id")]


class FarmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runners: Annotated[int, Field(ge=1, le=256, strict=True)] | Annotated[
        list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(min_length=1, max_length=256)
    ] = Field(description="how many runners take a part (the first that can, by name), or "
              "which ones (runner ids); the engine always takes one too")


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["wav24", "float32"] = "wav24"
    segment: tuple[StrictFloat, StrictFloat] | None = Field(
        default=None, description="[start_s, end_s] of the program to render; default all")
    farm: FarmRequest | None = Field(
        default=None, description="split the render over runners and the engine "
        "(docs/farm.md); the file is bit-identical to the engine's own render")

    @model_validator(mode="after")
    def _ordered(self) -> RenderRequest:
        if self.segment is not None and not 0 <= self.segment[0] < self.segment[1]:
            raise ValueError("segment must be [start_s, end_s] with 0 <= start_s < end_s")
        return self


def _http(exc: TaskError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def router(tasks: TaskService) -> APIRouter:
    api = APIRouter(prefix="/api/v1/tasks", tags=["tasks"],
                    dependencies=[Depends(require(Need.READ))])
    operator = [Depends(require(Need.FLOW))]  # an operator, or a node's flow

    @api.post("", status_code=201, dependencies=operator)
    async def reserve(
        spec: TaskSpec,
        engine: Annotated[str | None, Query(pattern=NAME_PATTERN,
                                            description="the engine to use; default: "
                                            "the least busy engine that is up")] = None,
    ) -> dict[str, Any]:
        """Reserve a task: validated, stored pending, then pushed to its engine and drivers."""
        try:
            task = await tasks.reserve(spec, engine)
        except TaskError as exc:
            raise _http(exc) from None
        return task.view()

    @api.get("")
    async def list_tasks() -> list[dict[str, Any]]:
        """Every task, oldest first; each with ``commands``, the ones its state allows now."""
        return [t.view() for t in sorted(tasks.tasks.values(), key=lambda t: t.created_at)]

    @api.get("/{task_id}")
    async def get_task(task_id: TaskId) -> dict[str, Any]:
        """The task, its latest meters, and ``commands``: the ones its state allows now."""
        try:
            view = tasks.get(task_id).view()
        except TaskError as exc:
            raise _http(exc) from None
        view["meters"] = tasks.meters.get(task_id)
        return view

    @api.post("/{task_id}/play", dependencies=operator)
    async def play(task_id: TaskId) -> dict[str, Any]:
        try:
            return (await tasks.play(task_id)).view()
        except TaskError as exc:
            raise _http(exc) from None

    @api.post("/{task_id}/stop", dependencies=operator)
    async def stop(task_id: TaskId) -> dict[str, Any]:
        try:
            return (await tasks.stop(task_id)).view()
        except TaskError as exc:
            raise _http(exc) from None

    @api.post("/{task_id}/render", status_code=202, dependencies=operator)
    async def render(task_id: TaskId,
                     request: Annotated[RenderRequest | None, Body()] = None) -> dict[str, Any]:
        """Start an offline render; follow it at ``renders/{render_id}``. With ``farm``, the
        render is split over runners' jobs and the engine, and its view's ``farm`` shows
        each part."""
        request = request or RenderRequest()
        segment = list(request.segment) if request.segment else None
        try:
            farm = request.farm.runners if request.farm is not None else None
            return (await tasks.render(task_id, request.format, segment, farm)).view()
        except TaskError as exc:
            raise _http(exc) from None

    @api.post("/{task_id}/renders/{render_id}/cancel", dependencies=operator)
    async def cancel_render(task_id: TaskId, render_id: RenderId) -> dict[str, Any]:
        """Render cancel: the engine stops and the partial file is deleted."""
        try:
            return (await tasks.cancel_render(task_id, render_id)).view()
        except TaskError as exc:
            raise _http(exc) from None

    @api.get("/{task_id}/renders/{render_id}")
    async def get_render(task_id: TaskId, render_id: RenderId) -> dict[str, Any]:
        try:
            render = tasks.get(task_id).renders.get(render_id)
        except TaskError as exc:
            raise _http(exc) from None
        if render is None:
            raise HTTPException(404, f"task {task_id} has no render {render_id!r}")
        return render.view()

    @api.get("/{task_id}/renders/{render_id}/file", response_class=FileResponse)
    async def render_file(task_id: TaskId, render_id: RenderId) -> FileResponse:
        try:
            path = tasks.render_path(task_id, render_id)
        except TaskError as exc:
            raise _http(exc) from None
        return FileResponse(path, media_type="audio/wav", filename=f"{task_id}-{render_id}.wav")

    @api.post("/{task_id}/release", dependencies=operator)
    async def release(task_id: TaskId) -> dict[str, Any]:
        """Reservation cancel: the engine and drivers drop the spec; the task is released."""
        try:
            return (await tasks.release(task_id)).view()
        except TaskError as exc:
            raise _http(exc) from None

    @api.patch("/{task_id}/instances/{instance_id}", dependencies=operator)
    async def set_params(
        task_id: TaskId, instance_id: InstanceId,
        params: Annotated[dict[str, Any], Body(description="parameters to change")],
    ) -> dict[str, Any]:
        """Change an instance's parameters live (validated against its model)."""
        try:
            merged = await tasks.set_params(task_id, instance_id, params)
        except TaskError as exc:
            raise _http(exc) from None
        return {"instance_id": instance_id, "params": merged}

    @api.websocket("/{task_id}/stream")
    async def stream(ws: WebSocket, task_id: str) -> None:
        """Mixed audio (binary frames, see docs/protocol.md) and meters (JSON text)."""
        await ws.accept()
        try:
            queue = tasks.subscribe(task_id)
        except TaskError as exc:
            await ws.close(4404, exc.message[:120])
            return

        async def drain_client() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await ws.receive_text()

        reader = asyncio.create_task(drain_client())
        try:
            while not reader.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                item = getter.result()
                if item is None:
                    await ws.close(1001, "hub shutting down")
                    break
                if isinstance(item, bytes):
                    await ws.send_bytes(item)
                else:
                    await ws.send_text(item)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            reader.cancel()
            tasks.unsubscribe(task_id, queue)

    return api
