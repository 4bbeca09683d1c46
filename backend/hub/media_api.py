"""The media routes under ``/api/v1/media`` (docs/media.md).

Upload (operator or node token: a flow that reserves a task with its own files must be able
to upload them, as it may reserve), list and delete (operator) take bearer tokens like
every route. Fetching a file and its info also take an agent's channel credentials in
``X-Agent-Id`` and ``X-Agent-Secret``: an engine or runner fetches the media a spec names
with what it already holds, instead of being handed a token of a kind that could read
everything else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from backend.errors import RequestRefused
from backend.hub.access import Need
from backend.hub.auth import agent_checked, require
from backend.hub.jobs.service import JobService
from backend.hub.media import SHA256_PATTERN, MediaStore, unknown
from backend.hub.registry import Registry
from backend.hub.tasks.service import TaskService

Sha256 = Annotated[str, Path(pattern=SHA256_PATTERN,
                             description="SHA-256 of the file's bytes, 64 lowercase hex digits")]
#: The agents whose credentials fetch media: those that build a task's graph from a spec.
FETCHERS = frozenset({"engine", "runner"})
AgentId = Annotated[str | None, Header(
    description="an engine's or runner's agent id (its credentials.json), instead of a "
    "bearer token")]
AgentSecret = Annotated[str | None, Header(description="that agent's secret")]
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


class MediaEntry(BaseModel):
    """A stored file: its hash, size, when it was stored, and the tasks that need it."""

    sha256: str
    bytes: int
    created_at: float
    used_by: list[str]


def _http(exc: RequestRefused) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def router(media: MediaStore, tasks: TaskService, registry: Registry,
           jobs: JobService | None = None) -> APIRouter:
    api = APIRouter(prefix="/api/v1/media", tags=["media"],
                    dependencies=[Depends(require(Need.READ))])
    read = require(Need.READ)

    def users_of() -> dict[str, list[str]]:
        """Media hash -> what still needs it: tasks not released, then render jobs not
        ended (ids start ``t_`` and ``j_``)."""
        users = tasks.media_users()
        for sha256, ids in (jobs.media_users() if jobs is not None else {}).items():
            users.setdefault(sha256, []).extend(ids)
        return users

    def view(sha256: str) -> dict[str, Any]:
        try:
            entry = media.get(sha256)
        except RequestRefused as exc:
            raise _http(exc) from None
        return entry.view(users_of().get(sha256, []))

    @api.get("")
    async def list_media() -> list[MediaEntry]:
        """Every stored file, oldest first, each with ``used_by``: the tasks (not released)
        whose spec names it."""
        users = users_of()
        found = sorted(media.entries.values(), key=lambda e: (e.created_at, e.sha256))
        return [MediaEntry(**e.view(users.get(e.sha256, []))) for e in found]

    @api.put(
        "/{sha256}", status_code=201, dependencies=[Depends(require(Need.FLOW))],
        response_model=MediaEntry, responses={200: {"model": MediaEntry,
                         "description": "already stored: the entry (the body is not read)"},
                   201: {"description": "stored: the entry"}},
        openapi_extra={"requestBody": {"required": True, "content": _BINARY}})
    async def upload(request: Request, sha256: Sha256) -> Any:
        """Store the raw body (``application/octet-stream``) as media named by its SHA-256.

        Hashed as it streams; kept only if its hash is the one in the path (else 422 with
        the body's real hash). Over ``--media-limit-mb`` 413; a full disk 507; no file is
        left by any of them. Content the hub already holds answers 200 at once, unread (a
        request without a body, or whose length is not the file's, is a 422 all the same)."""
        declared = request.headers.get("content-length", "")
        length = int(declared) if declared.isdigit() else None
        if length is None and "chunked" not in request.headers.get("transfer-encoding", ""):
            raise HTTPException(422, "the request has no body: send the file's bytes "
                                "(application/octet-stream) as the body")
        try:
            entry, stored = await media.put(sha256, request.stream(), length)
        except RequestRefused as exc:
            raise _http(exc) from None
        body = MediaEntry(**entry.view(users_of().get(sha256, [])))
        return JSONResponse(body.model_dump(), 201 if stored else 200)

    async def reader_or_agent(request: Request, x_agent_id: AgentId = None,
                              x_agent_secret: AgentSecret = None) -> None:
        """A bearer token that may read; or, when sent, an engine's or runner's agent id
        and secret, checked instead (under the failure throttle, as every credential).
        A dependency, so it runs before the path is validated: no token is a 401 first."""
        agent_id, secret = x_agent_id, x_agent_secret
        if agent_id is None and secret is None:
            await read(request)
            return

        async def check() -> None:
            try:
                await registry.check_agent(agent_id or "", secret or "", FETCHERS)
            except RequestRefused as exc:
                raise _http(exc) from None

        await agent_checked(request, secret or "", check)

    #: The fetch and the info: a bearer token that may read, or an agent's credentials.
    by_agents = APIRouter(prefix="/api/v1/media", tags=["media"],
                          dependencies=[Depends(reader_or_agent)])

    @by_agents.get(
        "/{sha256}", response_class=FileResponse,
        responses={200: {"content": _BINARY, "description": "the file's bytes"}})
    async def fetch(sha256: Sha256) -> FileResponse:
        """The file's bytes, for a token that may read, or for an engine or runner by its
        agent id and secret (which, when sent, are checked instead of a bearer token)."""
        path = media.path(sha256)
        if not media.has(sha256) or not path.exists():
            raise _http(unknown(sha256))
        return FileResponse(path, media_type="application/octet-stream", filename=sha256)

    @by_agents.get("/{sha256}/info")
    async def info(sha256: Sha256) -> MediaEntry:
        """The entry (size, when stored, ``used_by``) without the bytes: whether the hub
        holds a file before uploading it, or how big it is before fetching it (the same
        credentials as the fetch)."""
        return MediaEntry(**view(sha256))

    @api.delete("/{sha256}", status_code=204, dependencies=[Depends(require(Need.OPERATE))])
    async def delete(sha256: Sha256) -> Response:
        """Remove the file; refused (409, naming them) while a task that is not released,
        or a render job not ended, names it: release the tasks (or wait for or cancel the
        jobs) first."""
        users = users_of().get(sha256, [])
        if users:
            held = [u for u in users if not u.startswith("j_")]
            queued = [u for u in users if u.startswith("j_")]
            what = []
            if held:
                what.append(f"task{'s' * (len(held) > 1)} {', '.join(held)} (not released: "
                            "POST /api/v1/tasks/{task_id}/release)")
            if queued:
                what.append(f"render job{'s' * (len(queued) > 1)} {', '.join(queued)} (not "
                            "ended: wait, or POST /api/v1/jobs/{job_id}/cancel)")
            raise HTTPException(409, f"media {sha256} is used by {' and '.join(what)}; "
                                "delete it once nothing uses it")
        if media.claimed(sha256):
            raise HTTPException(409, f"media {sha256} is named by a task being reserved or a "
                                "render job being submitted at this moment: see GET "
                                "/api/v1/media/{sha256}/info, then delete it once nothing "
                                "uses it")
        try:
            await media.delete(sha256)
        except RequestRefused as exc:
            raise _http(exc) from None
        return Response(status_code=204)

    routes = APIRouter()
    routes.include_router(by_agents)
    routes.include_router(api)
    return routes
