"""The job and runner routes under ``/api/v1``.

A job's view carries ``commands``: what the hub accepts for it in its current state, so a
client offers exactly those instead of keeping its own copy of the rules.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from backend import sse
from backend.audio import TaskSpec
from backend.audio.graph import mix_layout
from backend.bodies import read_json
from backend.hub.access import Need
from backend.hub.auth import agent_checked, require
from backend.hub.jobs.service import JobError, JobService
from backend.hub.jobs.state import FINAL
from backend.protocol import NAME_PATTERN

JobId = Annotated[str, Path(pattern=r"^j_[0-9a-f]{12}$", description="a job id")]
RunnerId = Annotated[str, Path(pattern=NAME_PATTERN, description="the runner's name")]
ArtifactName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
FOLLOW_POLL_S = 0.2
MAX_ARTIFACT_BYTES = 2 * 1024**3


class Needs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpus: StrictFloat = Field(default=1.0, ge=0, le=4096)
    memory_mb: StrictInt = Field(default=0, ge=0)
    disk_mb: StrictInt = Field(default=0, ge=0)
    gpus: StrictInt = Field(default=0, ge=0, le=64)
    labels: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list)


class CommandPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    argv: list[str] = Field(min_length=1, json_schema_extra={
        "prefixItems": [{"type": "string", "minLength": 1}]})  # argv[0] names a program
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    shell: StrictBool = Field(default=False, description="run argv[0] through /bin/sh -c")

    @field_validator("argv")
    @classmethod
    def _no_empty_program(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("argv[0] must name a program")
        return argv


class RenderPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: TaskSpec
    format: Literal["wav24", "float32"] = "wav24"
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")] = "render.wav"
    chunks: list[Annotated[int, Field(ge=0, strict=True)]] | None = Field(
        default=None, min_length=1,
        description="a part of a farm render: only these chunks of the task's summation "
        "tree, each as the artifact chunk-<i>.f64 (float64 stereo, docs/audio.md); "
        "format and name then do not apply")
    segment: tuple[Annotated[float, Field(ge=0, strict=True)],
                   Annotated[float, Field(gt=0, strict=True)]] | None = Field(
        default=None, description="[start_s, end_s]: render only that part of the task")

    @model_validator(mode="after")
    def _chunks_exist(self) -> RenderPayload:
        if self.chunks is not None:
            count = len(mix_layout(len(self.spec.tracks))[1])
            wrong = sorted({c for c in self.chunks if c >= count})
            if wrong:
                raise ValueError(f"chunk {wrong[0]} does not exist: a task of "
                                 f"{len(self.spec.tracks)} tracks has {count} chunk(s), "
                                 f"0 to {count - 1}")
            if len(set(self.chunks)) != len(self.chunks):
                raise ValueError("chunks lists a chunk twice")
        if self.segment is not None and self.segment[0] >= self.segment[1]:
            raise ValueError("segment: the start must be before the end")
        return self


class CommandJob(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "command", "needs": {"cpus": 1}, "payload": {"argv": ["echo", "hello"]},
         "timeout_s": 60}]})
    kind: Literal["command"]
    needs: Needs = Field(default_factory=Needs)
    payload: CommandPayload
    timeout_s: StrictFloat | None = Field(default=None, gt=0, le=30 * 24 * 3600)


class RenderJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["render"]
    needs: Needs = Field(default_factory=Needs)
    payload: RenderPayload
    timeout_s: StrictFloat | None = Field(default=None, gt=0, le=30 * 24 * 3600)


#: A job as submitted: what ``payload`` must hold depends on ``kind``, and the document
#: says so (a ``oneOf`` by ``kind``).
JobRequest: TypeAdapter[CommandJob | RenderJob] = TypeAdapter(
    Annotated[CommandJob | RenderJob, Field(discriminator="kind")])


def parse_job(body: Any) -> CommandJob | RenderJob:
    """The job, or a 422 whose field errors are located as the client sent them (without
    the ``kind`` tag pydantic puts in front of a union member's fields)."""
    try:
        return JobRequest.validate_python(body)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = list(e["loc"])
            if loc and loc[0] in ("command", "render"):
                loc = loc[1:]
            errors.append({"type": e["type"], "msg": e["msg"], "loc": ["body", *loc]})
        raise HTTPException(422, errors) from None


def _http(exc: JobError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def router(jobs: JobService) -> APIRouter:
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require(Need.READ))])
    #: Routes a runner calls with its agent id and secret instead of a bearer token.
    by_agents = APIRouter(prefix="/api/v1")
    operator = [Depends(require(Need.OPERATE))]

    @api.post("/jobs", status_code=201, dependencies=operator, tags=["jobs"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {
                      "$ref": "#/components/schemas/JobRequest"}}}}})
    async def submit(request: Request) -> dict[str, Any]:
        """Queue a job; the hub offers it to one runner that fits at a time."""
        job_request = parse_job(await read_json(request))
        payload = job_request.payload.model_dump(mode="json")
        try:
            job = await jobs.submit(job_request.kind, job_request.needs.model_dump(), payload,
                                    job_request.timeout_s)
        except JobError as exc:
            raise _http(exc) from None
        return job.view()

    @api.get("/jobs", tags=["jobs"])
    async def list_jobs(
        state: Annotated[str | None, Query(description="only jobs in this state")] = None,
    ) -> list[dict[str, Any]]:
        """Jobs, oldest first; each with ``commands``, the ones its state allows now."""
        found = sorted(jobs.jobs.values(), key=lambda j: j.created_at)
        return [j.view() for j in found if state is None or j.state.value == state]

    @api.get("/jobs/{job_id}", tags=["jobs"])
    async def get_job(job_id: JobId) -> dict[str, Any]:
        """The job, with ``commands``: the ones its state allows now (``cancel`` or none)."""
        try:
            return jobs.get(job_id).view()
        except JobError as exc:
            raise _http(exc) from None

    @api.post("/jobs/{job_id}/cancel", dependencies=operator, tags=["jobs"])
    async def cancel(job_id: JobId) -> dict[str, Any]:
        """A queued job is cancelled at once; a running one gets SIGTERM, then SIGKILL."""
        try:
            return (await jobs.cancel(job_id)).view()
        except JobError as exc:
            raise _http(exc) from None

    @api.get("/jobs/{job_id}/logs", tags=["jobs"], response_model=None, responses={200: {
        "description": "the job's output: JSON, or server-sent events with follow=true",
        "content": {"application/json": {"schema": {"type": "object"}},
                    "text/event-stream": {"schema": {"type": "string"}}}}})
    async def job_logs(request: Request, job_id: JobId,
                       follow: Annotated[bool, Query()] = False) -> Any:
        """The job's output; ``?follow=1`` streams it as server-sent events until it ends."""
        try:
            path = jobs.output_path(job_id)
        except JobError as exc:
            raise _http(exc) from None
        if not follow:
            text = path.read_bytes() if path.exists() else b""
            return PlainTextResponse(text.decode(errors="replace"))
        start = sse.resume_point(request, None)

        async def records() -> AsyncIterator[bytes]:
            offset = start
            while True:
                done = jobs.jobs[job_id].state in FINAL
                size = path.stat().st_size if path.exists() else 0
                if size > offset:
                    with path.open("rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read(size - offset)
                    offset = size
                    yield sse.frame(offset, "output", {"text": chunk.decode(errors="replace")})
                elif done:
                    job = jobs.jobs[job_id]
                    yield sse.frame(offset, "end", {"state": job.state.value,
                                                    "exit_code": job.exit_code})
                    return
                else:
                    await asyncio.sleep(FOLLOW_POLL_S)

        return sse.stream(records())

    @api.get("/jobs/{job_id}/artifacts/{name}", tags=["jobs"], response_class=FileResponse)
    async def artifact(job_id: JobId, name: ArtifactName) -> FileResponse:
        try:
            job = jobs.get(job_id)
        except JobError as exc:
            raise _http(exc) from None
        path = jobs.artifact_path(job_id, name)
        if name not in job.artifacts or not path.exists():
            raise HTTPException(404, f"job {job_id} has no artifact {name!r} "
                                f"(it has: {', '.join(job.artifacts) or 'none'})")
        return FileResponse(path, filename=name)

    @by_agents.put("/jobs/{job_id}/artifacts/{name}", status_code=204, tags=["jobs"])
    async def upload_artifact(
        request: Request, job_id: JobId, name: ArtifactName,
        x_agent_id: Annotated[str, Header()], x_agent_secret: Annotated[str, Header()],
    ) -> None:
        """The job's runner uploads a result file (its channel id and secret prove it)."""

        async def check() -> None:
            try:
                await jobs.check_runner_secret(jobs.get(job_id), x_agent_id, x_agent_secret)
            except JobError as exc:
                raise _http(exc) from None

        await agent_checked(request, x_agent_secret, check)
        path = jobs.artifact_path(job_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{name}.part")
        size = 0
        with part.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_ARTIFACT_BYTES:
                    handle.close()
                    part.unlink(missing_ok=True)
                    raise HTTPException(413, "artifact over the 2 GiB limit")
                await asyncio.to_thread(handle.write, chunk)
        os.replace(part, path)

    @api.get("/runners", tags=["runners"])
    async def list_runners() -> list[dict[str, Any]]:
        return [jobs.runner_view(i) for i in sorted(jobs.book.runners.values(),
                                                     key=lambda i: i.id)]

    @api.get("/runners/{runner_id}", tags=["runners"])
    async def get_runner(runner_id: RunnerId) -> dict[str, Any]:
        try:
            return jobs.runner_view(jobs.runner(runner_id))
        except JobError as exc:
            raise _http(exc) from None

    @api.get("/runners/{runner_id}/logs", tags=["runners"], response_class=PlainTextResponse)
    async def runner_logs(runner_id: RunnerId,
                          lines: Annotated[int, Query(ge=1, le=10_000)] = 200) -> str:
        """The tail of the runner's own log, fetched from the runner over its channel."""
        try:
            return await jobs.runner_logs(runner_id, lines)
        except JobError as exc:
            raise _http(exc) from None

    @api.delete("/runners/{runner_id}", dependencies=operator, tags=["runners"])
    async def revoke(runner_id: RunnerId) -> dict[str, Any]:
        """Revoke: the connection is closed and the runner's secret refused from now on."""
        try:
            return jobs.runner_view(await jobs.revoke(runner_id))
        except JobError as exc:
            raise _http(exc) from None

    routes = APIRouter()
    routes.include_router(by_agents)
    routes.include_router(api)
    return routes
