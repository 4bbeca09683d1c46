"""The node's HTTP surface under ``/node/v1`` (docs/flows.md) and the workers' socket.

Bodies are read here with a size limit (413 before a byte more than the limit is read) and
parsed here (malformed JSON is a 422 that says where), so every error names what was
wrong. A candidate is checked against the lock's JSON Schema before it is stored; one that
fails never reaches the flow. A lock of a child run (listed in the parent's ``locks``) can
be answered through the parent: the node forwards it to the child's node via the hub.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import jsonschema
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend import sse
from backend.bodies import read_json
from backend.client import HubClient
from backend.hub.access import Need
from backend.hub.auth import require
from backend.node import form
from backend.node.events import FollowerDropped
from backend.node.runs import RunError
from backend.node.service import Node
from backend.problems import problem

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the run's fid")]
LockId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the lock's lid")]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"flow": "hello", "inputs": {"name": "Ada"}}]})
    flow: str = Field(min_length=1, description="a flow name from GET /node/v1/flows")
    inputs: dict[str, Any] | None = Field(
        default=None, description="the flow's inputs; omit them to start locked, demanding "
        "them")
    parent: dict[str, Any] | None = Field(
        default=None, description="set by a flow that runs this one as its child")


def _raise(exc: RunError) -> HTTPException:
    return HTTPException(exc.status_code, exc.detail)


def router(node: Node) -> APIRouter:
    api = APIRouter(prefix="/node/v1", tags=["node"],
                    dependencies=[Depends(require(Need.READ))])
    #: A flow worker's channel, authenticated by its run's own token in the handshake.
    by_workers = APIRouter(prefix="/node/v1", tags=["node"])
    operator = [Depends(require(Need.FLOW))]
    runs = node.runs
    limit = node.settings.max_body_bytes

    def hub() -> HubClient:
        if not node.hub_url:
            raise HTTPException(503, "this node is not linked to a hub yet; a child's lock "
                                     "can be answered on the child's node")
        return HubClient(node.hub_url, node.hub_token, trust=node.hub_trust)

    @api.get("/flows")
    async def flows() -> list[dict[str, Any]]:
        """The flows this node offers: name, description and the JSON Schema of inputs."""
        return node.catalog.entries()

    @api.get("/runs")
    async def list_runs(
        limit_: Annotated[int, Query(alias="limit", ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The most recent runs, newest first (fid, flow, state)."""
        recent = list(runs.runs.values())[-limit_:]
        return [{"fid": r.fid, "flow": r.state.flow, "state": r.state.state,
                 "created_at": r.state.created_at} for r in reversed(recent)]

    @api.post("/runs", status_code=201, dependencies=operator, openapi_extra={
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": RunRequest.model_json_schema()}}}})
    async def start_run(request: Request) -> dict[str, Any]:
        """Launch a flow in its own worker process; returns its ``fid`` at once."""
        raw = await read_json(request, limit)
        try:
            body = RunRequest.model_validate(raw)
        except ValidationError as exc:
            raise HTTPException(422, [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]) from None
        try:
            run = await runs.launch(body.flow, body.inputs, body.parent)
        except RunError as exc:
            raise _raise(exc) from None
        return {"fid": run.fid, "flow": body.flow, "state": run.state.state}

    @api.get("/runs/{fid}")
    async def get_run(fid: RunId) -> dict[str, Any]:
        """The run's state, folded from its events: locks, children, result, error."""
        try:
            return runs.get(fid).state.view()
        except RunError as exc:
            raise _raise(exc) from None

    @api.post("/runs/{fid}/cancel", dependencies=operator)
    async def cancel_run(fid: RunId) -> dict[str, Any]:
        """Stop the run's worker; the run ends ``cancelled``."""
        try:
            run = await runs.cancel(fid)
        except RunError as exc:
            raise _raise(exc) from None
        return run.state.view()

    @api.get("/runs/{fid}/events", response_model=None, responses=sse.DOCUMENTED)
    async def run_events(
        fid: RunId, request: Request,
        after: Annotated[int | None, Query(ge=0, description="resume after this offset")]
        = None,
    ) -> Any:
        """Server-sent events; ids are stream offsets, so ``Last-Event-ID`` resumes exactly.

        The stream ends after the ``final`` event.
        """
        try:
            run = runs.get(fid)
        except RunError as exc:
            raise _raise(exc) from None
        start = sse.resume_point(request, after)

        async def records() -> AsyncIterator[bytes]:
            if run.state.done and start >= run.state.offset:
                return
            try:
                async for event in node.events.follow(fid, start):
                    yield sse.frame(event.offset, event.type, event.as_json())
                    if event.type == "final":
                        return
            except FollowerDropped:
                return  # the client reconnects with Last-Event-ID and catches up

        return sse.stream(records())

    @api.get("/runs/{fid}/lock/{lid}/candidate", response_model=None)
    async def demand(fid: RunId, lid: LockId, request: Request) -> Response | dict[str, Any]:
        """The lock's demand (prompt and JSON Schema); an HTML form for ``text/html``."""
        try:
            run = runs.get(fid)
        except RunError as exc:
            raise _raise(exc) from None
        lock = run.state.lock_book.locks.get(lid)
        if lock is not None:
            body = lock.demand()
        else:
            child = run.state.find_child_lock(lid)
            if child is None:
                raise HTTPException(404, f"no lock {lid!r} in run {fid} or its children")
            client = hub()
            try:
                body = await client.node(str(child["node"])).demand(str(child["fid"]), lid)
            except Exception as exc:
                raise HTTPException(502, f"could not reach the child's node: {exc}") from None
            finally:
                await client.aclose()
            body = {**body, "node": child["node"], "fid": child["fid"]}
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(form.render(body))
        return body

    @api.post("/runs/{fid}/lock/{lid}/candidate", dependencies=operator,
              response_model=None, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object"}}}}})
    async def submit(fid: RunId, lid: LockId, request: Request) -> Response:
        """Submit a candidate (the JSON object itself); 200 released, 422 denied or
        invalid, 409 lock no longer open, 404 unknown lock, 504 no verdict in time."""
        value = await read_json(request, limit)
        try:
            run = runs.get(fid)
        except RunError as exc:
            raise _raise(exc) from None
        book = run.state.lock_book
        if lid not in book.locks:
            child = run.state.find_child_lock(lid)
            if child is None:
                raise HTTPException(404, f"no lock {lid!r} in run {fid} or its children")
            client = hub()
            try:
                answer = await client.node(str(child["node"])).submit(
                    str(child["fid"]), lid, value)
            except Exception as exc:
                raise HTTPException(502, f"could not reach the child's node: {exc}") from None
            finally:
                await client.aclose()
            return _verdict(answer.status, answer.body)
        if run.final_queued or run.state.done:
            raise HTTPException(409, f"run {fid} is {run.state.state}; its locks are closed")
        admission = book.admit(lid)
        if not admission.ok:
            raise HTTPException(admission.status_code, admission.detail)
        lock = book.locks[lid]
        try:
            jsonschema.validate(value, lock.schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "candidate"
            raise HTTPException(422, f"{where}: {exc.message}") from None
        except jsonschema.SchemaError as exc:
            raise HTTPException(500, f"the lock's schema is not valid: {exc.message}") from None
        try:
            verdict = await runs.submit(fid, lid, value)
        except RunError as exc:
            return _verdict(exc.status_code, exc.detail if isinstance(exc.detail, dict)
                            else {"detail": exc.detail})
        return _verdict(verdict.status_code, verdict.body)

    @by_workers.websocket("/workers/{fid}")
    async def worker_channel(ws: WebSocket, fid: str) -> None:
        await runs.serve_worker(ws, fid)

    routes = APIRouter()
    routes.include_router(by_workers)
    routes.include_router(api)
    return routes


def _verdict(status: int, body: Any) -> Response:
    """A lock's answer: 200 with the release; any other status as a problem, keeping what
    clients read (``reason`` of a denial, ``lid``/``cid``/``released``) as extensions."""
    if status < 400:
        return JSONResponse(body, status)
    fields: dict[str, Any] = dict(body) if isinstance(body, dict) else {"detail": str(body)}
    detail = str(fields.pop("detail", None) or fields.get("reason") or "refused")
    kept = {k: v for k, v in fields.items() if k not in ("status", "title", "type", "headers")}
    return problem(status, detail, **kept)
