"""The hub's HTTP and WebSocket surface under ``/api/v1`` (the contract in docs/protocol.md)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from backend import API_VERSION, __version__, sse
from backend.hub.access import NAMED_KINDS, Need, Principal
from backend.hub.auth import require
from backend.hub.channel import serve_agent
from backend.hub.events import Event, SubscriberDropped
from backend.hub.named_tokens import TokenError
from backend.hub.service import Hub
from backend.protocol import NAME_PATTERN, TlsNext
from backend.streams import until

ComponentId = Annotated[str, Path(pattern=NAME_PATTERN, description="the component's name")]


class EnrollmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "engine"}, {"kind": "runner", "ttl_s": 600}]})
    kind: Literal["engine", "driver", "runner", "node", "hub"]
    ttl_s: StrictFloat | None = Field(
        default=None, gt=0, le=30 * 24 * 3600,
        description="seconds until the token expires (default 1 h)",
    )


class EnrollmentResponse(BaseModel):
    token: str
    kind: str
    expires_at: float
    #: The SHA-256 fingerprint of the hub's certificate, for the agent's ``--pin``; null
    #: when the hub speaks plain HTTP on loopback.
    pin: str | None = None


class NextCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate: str | None = Field(
        default=None, max_length=16384,
        description="the PEM certificate of a studio or public CA the hub will be restarted "
        "with (--tls-cert); leave out for a hub that makes its own")


#: Events that arrive together on ``GET /api/v1/events`` are sent together after this long:
#: the event log reads as live, and a burst costs each reader one wake-up, not hundreds.
EVENTS_COALESCE_S = 0.02


def _not_found(component_id: str) -> HTTPException:
    return HTTPException(
        404, f"no component {component_id!r}; GET /api/v1/components lists the registered ones"
    )


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "wall-display", "kind": "viewer"}]})
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                      description="a name to list and revoke it by, e.g. wall-display "
                      "(1-64 of A-Za-z0-9._-; 'admin' is taken by admin.token)")
    kind: Literal["operator", "viewer"] = Field(
        description="viewer: reads and streams only; operator: everything")


def router(hub: Hub) -> APIRouter:
    """The hub's routes: health and the agent channel open, every other one behind a token."""
    public = APIRouter(prefix="/api/v1")
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require(Need.READ))])
    operator = [Depends(require(Need.OPERATE))]

    @public.get("/health", tags=["hub"])
    async def health() -> dict[str, Any]:
        """Liveness and version only: the one route open without a token."""
        return {"status": "ok", "version": __version__}

    def tls_view() -> dict[str, Any] | None:
        if hub.tls is None or hub.tls.current is None:
            return None
        current, upcoming = hub.tls.current, hub.tls.next
        return {
            "fingerprint": current.fingerprint,
            "self_signed": current.self_signed,
            "next": None if upcoming is None else {"fingerprint": upcoming.fingerprint},
        }

    @api.get("/hub", tags=["hub"])
    async def about_hub(request: Request) -> dict[str, Any]:
        """What a console attached from another machine needs to know about this hub.

        A console calls it first to check its address and token in one request; ``access``
        says what the token may do (``operator``, ``viewer`` or ``node``), so a console
        with a viewer token can grey out what it cannot do.
        ``last_event_id`` lets the console replay only the recent history of the events.
        """
        health_settings = hub.settings.health
        data_dir = hub.settings.data_dir
        principal: Principal = request.state.principal
        return {
            "api": API_VERSION,
            "version": __version__,
            "access": principal.kind.value,
            "role": hub.settings.role,
            "host": socket.gethostname(),
            "data_dir": str(data_dir),
            "admin_token": str(data_dir / "admin.token"),
            "health": {
                "interval_s": health_settings.interval_s,
                "timeout_s": health_settings.timeout_s,
                "misses": health_settings.misses,
            },
            "started_at": hub.started_at,
            "uptime_s": round(time.time() - hub.started_at, 3),
            "components": hub.counts(),
            "tls": tls_view(),
            "last_event_id": await hub.events.last_id(),
        }

    @api.get("/tls", tags=["hub"])
    async def tls() -> dict[str, Any]:
        """The certificate the hub serves and the next one it announced (null on plain
        HTTP): what agents pin, and what they will have to trust after a restart."""
        view = tls_view()
        if view is None:
            raise HTTPException(404, "this hub speaks plain HTTP on loopback: there is no "
                                "certificate (start it with --tls on, or beyond loopback)")
        return view

    @api.post("/tls/next", tags=["hub"], dependencies=operator)
    async def announce_next_certificate(body: NextCertificate | None = None) -> dict[str, Any]:
        """Make (or record) the certificate the hub switches to at its next start, and
        announce it to every connected agent, which trusts it from then on; agents that
        connect later learn it in their welcome. Agents that are offline until after the
        switch need ``controlroom agent repin``."""
        if hub.tls is None:
            raise HTTPException(404, "this hub speaks plain HTTP on loopback: there is no "
                                "certificate to rotate")
        try:
            upcoming = hub.tls.stage(body.certificate if body else None)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        told = await hub.registry.broadcast(TlsNext(certificate=upcoming.pem))
        await hub.events.append("tls.next_announced", "hub",
                                {"fingerprint": upcoming.fingerprint, "told": told})
        return {"fingerprint": upcoming.fingerprint, "told": told,
                "note": "the hub switches to it at its next start"}

    @api.get("/components", tags=["components"])
    async def list_components() -> list[dict[str, Any]]:
        return [c.view() for c in sorted(hub.registry.components.values(), key=lambda c: c.id)]

    @api.get("/components/{component_id}", tags=["components"])
    async def get_component(component_id: ComponentId) -> dict[str, Any]:
        component = hub.registry.components.get(component_id)
        if component is None:
            raise _not_found(component_id)
        return component.view()

    @api.get("/configs/{component_id}", tags=["components"])
    async def get_config(component_id: ComponentId) -> dict[str, Any]:
        """The stored config (not merged); ``{}`` when none was stored."""
        return await hub.registry.stored_config(component_id)

    @api.put("/configs/{component_id}", tags=["components"], dependencies=operator)
    async def put_config(
        component_id: ComponentId,
        config: Annotated[dict[str, Any], Body(description="the config to store, an object")],
    ) -> dict[str, Any]:
        """Store a component's config; the merged result is pushed live if it is connected."""
        merged = await hub.registry.put_config(component_id, config)
        component = hub.registry.components.get(component_id)
        return {
            "id": component_id,
            "stored": config,
            "merged": merged if component else None,
            "pushed": bool(component and component.link is not None),
        }

    @api.post("/enrollments", tags=["enrollment"], dependencies=operator, status_code=201)
    async def create_enrollment(request: EnrollmentRequest) -> EnrollmentResponse:
        """A one-time token an agent exchanges for an id and secret at first registration."""
        ttl = request.ttl_s or hub.settings.enrollment_ttl_s
        enrollment = await hub.registry.create_enrollment(request.kind, ttl)
        current = hub.tls.current if hub.tls is not None else None
        return EnrollmentResponse(
            token=enrollment.token, kind=enrollment.kind, expires_at=enrollment.expires_at,
            pin=current.fingerprint if current is not None else None,
        )

    @api.get("/events", tags=["events"], response_model=None, responses=sse.DOCUMENTED)
    async def events(
        request: Request,
        after: Annotated[int | None, Query(ge=0, description="resume after this id")] = None,
    ) -> Any:
        """Server-sent events; reconnect with ``Last-Event-ID`` to miss none and see none twice."""
        start = sse.resume_point(request, after)
        revoked = hub.named_tokens.revoked_signal(request.state.principal)

        async def records() -> AsyncIterator[bytes]:
            source: AsyncIterator[Event] = hub.events.follow(start)
            if revoked is not None:  # a named token's stream ends when it is revoked
                source = until(revoked, source)
            try:
                async for event in source:
                    yield sse.frame(event.id, event.type, event.as_json())
            except SubscriberDropped:
                return  # the client reconnects with Last-Event-ID and catches up

        return sse.stream(records(), coalesce_s=EVENTS_COALESCE_S)

    @api.post("/tokens", tags=["tokens"], dependencies=operator, status_code=201)
    async def create_token(body: TokenRequest) -> dict[str, Any]:
        """A named token, shown this once (only its digest is kept)."""
        try:
            secret = await hub.named_tokens.create(body.name, body.kind)
        except TokenError as exc:
            raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from exc
        await hub.events.append("token.created", body.name, {"kind": body.kind})
        return {"name": body.name, "kind": body.kind, "token": secret,
                "note": "shown once: store it now; DELETE /api/v1/tokens/NAME revokes it"}

    @api.get("/tokens", tags=["tokens"], dependencies=operator)
    async def list_tokens() -> list[dict[str, Any]]:
        """Names, kinds, creation and last use; never a secret."""
        return [t.as_dict() for t in await hub.named_tokens.list()]

    @api.delete("/tokens/{name}", tags=["tokens"], dependencies=operator)
    async def revoke_token(name: str) -> dict[str, Any]:
        """Revoke at once: the next call with it is refused, its open streams close."""
        if not await hub.named_tokens.revoke(name):
            raise HTTPException(404, f"no token named {name!r}; GET /api/v1/tokens lists them "
                                f"(kinds: {', '.join(NAMED_KINDS)})")
        await hub.events.append("token.revoked", name, {})
        return {"name": name, "revoked": True}

    @public.websocket("/agents")
    async def agents(ws: WebSocket) -> None:
        # agents authenticate in their hello
        await serve_agent(ws, hub.registry, tls_next=lambda: (
            hub.tls.next.pem if hub.tls is not None and hub.tls.next is not None else None),
            throttle=hub.throttle)

    routes = APIRouter()
    routes.include_router(public)
    routes.include_router(api)
    return routes
