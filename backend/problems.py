"""One error body across the whole API: RFC 9457 problem details.

Every error the hub or a node answers, whatever raised it (a route's ``HTTPException``, a
request that fails validation, a body that is not JSON, a method the path does not take),
is ``application/problem+json``::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "tracks.0.gain_db: Input should be a valid number",
     "errors": [{"loc": ["body", "tracks", 0, "gain_db"], "msg": "...", "type": "..."}]}

``detail`` is always one sentence for a person. Extension members carry what programs read:
``errors`` (a 422's field errors, each with its location, as clients read them before) and
whatever a route adds (a lock denial's ``reason``). Version 2 of the API is this shape
(version 1 answered FastAPI's ``{"detail": ...}``, a string or a list).

:func:`install` adds the handlers and makes the OpenAPI document say so: every operation
lists the error statuses it can answer, each with this body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import diskspace
from backend.hub.access import Need
from backend.hub.auth import identify

MEDIA_TYPE = "application/problem+json"
#: FastAPI's words for a body it could not decode (not UTF-8): a 422 like malformed JSON.
_UNPARSABLE = "There was an error parsing the body"
_SKIPPED_METHODS = {"HEAD", "OPTIONS"}


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error answer (RFC 9457), with this API's extension members."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="a 422's field errors, each with its location")
    reason: str | None = Field(default=None, description="why a lock candidate was denied")
    where: str | None = Field(default=None, description="a 507's full directory: free space "
                              "there and try again")


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None,
            **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status,
                            "detail": detail}
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status, headers=headers, media_type=MEDIA_TYPE)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """pydantic's errors as ``loc``/``msg``/``type`` only (its ``input`` and ``ctx`` may
    echo a secret or not be JSON)."""
    out = []
    for error in errors:
        out.append({"loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
                    "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    return out


def sentence(errors: list[dict[str, Any]]) -> str:
    """``tracks.0.gain_db: Input should be a valid number; ...``, for ``detail``."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error["loc"] if p != "body")
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more if parts else "the request is not valid"


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route takes at ``path`` (Starlette's 405 names only the first
    route's, and each method of a path is a route of its own in FastAPI)."""
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= route.methods or set()
    return sorted(methods - _SKIPPED_METHODS)


def install(app: FastAPI, error_statuses: Callable[[str, str], set[int]] | None = None,
            schemas: dict[str, TypeAdapter[Any]] | None = None,
            finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            storage: Sequence[Room] = ()) -> None:
    """The problem handlers on ``app``, and its OpenAPI document listing them per
    operation (``error_statuses(method, path)``, by default :func:`default_statuses`).
    ``schemas`` adds named schemas a route refers to by hand (a body it validates itself,
    e.g. a union by ``kind``); ``finish`` has the last word on the document (links);
    ``storage`` names the data dirs whose room :class:`StorageGate` checks before a change."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        if exc.status_code == 400 and exc.detail == _UNPARSABLE:
            errors = [{"loc": ["body"], "msg": "the body is not valid JSON (or not UTF-8)",
                       "type": "json_invalid"}]
            return problem(422, sentence(errors), errors=errors)
        if isinstance(exc.detail, list):  # a route's own field errors (loc/msg/type)
            errors = field_errors(e for e in exc.detail if isinstance(e, dict))
            return problem(exc.status_code, sentence(errors), headers=headers or None,
                           errors=errors)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(exc.status_code, detail, headers=headers or None)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        return problem(422, sentence(errors), errors=errors)

    async def storage_full(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, diskspace.StorageFull)
        return storage_problem(exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(diskspace.StorageFull, storage_full)
    if storage:
        app.add_middleware(StorageGate, rooms=tuple(storage))
    statuses = error_statuses or default_statuses

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version,
                                   description=app.description, routes=app.routes)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, adapter in (schemas or {}).items():
                schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[name] = schema
            document = document_errors(document, statuses)
            app.openapi_schema = finish(document) if finish is not None else document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


OPEN = {("get", "/api/v1/health")}
#: Reads an agent may also make with its id and secret, whose credentials may be revoked
#: or of a kind the read is not for (403).
AGENT_READS = {("get", "/api/v1/media/{sha256}"), ("get", "/api/v1/media/{sha256}/info")}
_PATH_PARAM = re.compile(r"\{[^}]+\}")


def default_statuses(method: str, path: str) -> set[int]:
    """The errors an operation of this API can answer, by the rules every route follows:
    a token on every route but health (401, and 429 after repeated failures); 403 for a
    change a viewer may not make; 404 where the path names something or the change does;
    409 and 503 for a change the current state refuses or a component it needs is away;
    507 for a change when the data dir it writes to is full; 422 for anything with
    parameters or a body; 403 for a read an agent makes with revoked credentials."""
    if (method, path) in OPEN:
        return set()
    found = {401, 422, 429}
    if method != "get":
        found |= {403, 404, 409, 413, 503, 507}
    elif _PATH_PARAM.search(path) or path == "/api/v1/tls":
        found |= {404, 503}
        if path.endswith("/file"):
            found.add(409)  # a render not done (yet, or ever) has no file
        if (method, path) in AGENT_READS:
            found.add(403)
    if "/nodes/{name}/" in path or "/lock/" in path:
        found.add(502)  # another node answered nothing (the proxy, a child's lock)
    if method == "post" and (path.endswith("/candidate") or path.endswith("/{path}")):
        found.add(504)  # the flow gave no verdict in time (directly, or through the proxy)
    return found


def document_errors(document: dict[str, Any], statuses: Callable[[str, str], set[int]]
                    ) -> dict[str, Any]:
    """Each operation's error answers, all with the :class:`Problem` body."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["FieldError"] = FieldError.model_json_schema()
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem_schema.pop("$defs", None)
    schemas["Problem"] = problem_schema
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(method, path)):
                responses[str(status)] = {
                    "description": _title(status),
                    "content": {MEDIA_TYPE: {"schema": ref}},
                }
    return document


#: ``(path prefix, what, data dir)``: a request under the prefix writes to the data dir,
#: called ``what`` in the answer (``("/node/", "the node's data dir", DIR)``).
Room = tuple[str, str, Path]
#: Changes that end or undo something: let through on a full disk (stopping a play must
#: never need free space); if their own write fails they answer 507 all the same.
_WINDING_DOWN = {"stop", "cancel", "release", "unregister"}
_NODE_PROXY = re.compile(r"^/api/v1/nodes/[^/]+/(?!token$)")


def storage_problem(exc: diskspace.StorageFull) -> JSONResponse:
    """507 Insufficient Storage: ``detail`` names what is full and where, and ``where``
    carries the path for programs."""
    return problem(507, exc.message, where=exc.where)


class StorageGate:
    """Refuses new work while the data dir it would be written to is full, and turns a
    full-disk error of any route into the same 507 instead of a 500.

    Before a ``POST``/``PUT``/``PATCH`` (a ``DELETE`` and a stop, cancel or release wind
    work down and pass), one ``statvfs`` of the request's room
    (:func:`backend.diskspace.check`): a few microseconds, and nothing is remembered, so
    the first request after space returns is served. The proxy to another node passes:
    that node answers for its own disk. Reads are never checked.
    """

    def __init__(self, app: ASGIApp, rooms: tuple[Room, ...]) -> None:
        self.app = app
        self.rooms = sorted(rooms, key=lambda room: -len(room[0]))  # longest prefix first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        room = next((r for r in self.rooms if path.startswith(r[0])), None)
        try:
            if room is not None and _makes_work(scope.get("method", "GET"), path) and \
                    _may_change(scope):
                diskspace.check(room[1], room[2])
        except diskspace.StorageFull as exc:
            await storage_problem(exc)(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or room is None or not diskspace.is_full(exc):
                raise
            full = exc if isinstance(exc, diskspace.StorageFull) else \
                diskspace.StorageFull(room[1], room[2])
            await storage_problem(full)(scope, receive, send)


def _may_change(scope: Scope) -> bool:
    """Whether the caller's token may change something: only such a caller learns that the
    disk is full and where; anyone else gets the route's own 401 or 403 first. (A call an
    agent proves with its id and secret passes too; its write meets the full disk.)"""
    conn = HTTPConnection(scope)
    if getattr(conn.app.state, "operator_token", None) is None:
        return True  # an app without tokens (none of the product's): everyone may
    who = identify(conn)
    return who is not None and who.may(Need.FLOW)


def _makes_work(method: str, path: str) -> bool:
    if method not in ("POST", "PUT", "PATCH"):
        return False
    if path.rstrip("/").rsplit("/", 1)[-1] in _WINDING_DOWN:
        return False
    return not _NODE_PROXY.match(path)
