"""The hub's registry of nodes and its proxy to them (``/api/v1/nodes``).

A standalone node is an agent of kind ``node``: it enrolls and registers like any other
component, announcing ``{"url", "flows"}`` in its static config, and is health-checked
like every component. It then hands the hub its own API token with
``POST /api/v1/nodes/{name}/token``, authenticated by the same agent id and secret it
registered with (the token never appears in ``GET /api/v1/components``, which shows
configs). On shutdown it calls ``POST /api/v1/nodes/{name}/unregister``.

The embedded node (desktop app, ``--headless``) shares the hub's process and server; it
is entered here directly (:meth:`NodeDirectory.add_embedded`), with no agent connection,
and listed like the others.

``/api/v1/nodes/{name}/...`` forwards to the node's ``/node/v1/...`` with the node's
token, streaming (SSE included), so clients and nested flows need only the hub's operator
token. A linked node's token is also accepted by the hub as an operator credential
(:meth:`NodeDirectory.accepts`): that is how a flow on a standalone node reserves audio
tasks and runs flows on other nodes.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from backend.errors import AuthError
from backend.hub.access import Need
from backend.hub.auth import agent_checked, authorize, require
from backend.hub.service import Hub
from backend.protocol import NAME_PATTERN, Hello
from backend.tls import Trust

log = logging.getLogger(__name__)

NodeName = Annotated[str, Path(pattern=NAME_PATTERN, description="the node's name")]
#: A path under the node's ``/node/v1``: printable characters only (a control character
#: cannot be put in the URL the proxy calls).
ProxiedPath = Annotated[str, Path(pattern=r"^[^\x00-\x1f\x7f]*$",
                                  description="the path under the node's /node/v1")]
MAX_PROXY_BODY = 1024 * 1024
#: Headers passed through the proxy in each direction.
REQUEST_HEADERS = ("accept", "content-type", "last-event-id")
RESPONSE_HEADERS = ("content-type", "cache-control", "www-authenticate")


@dataclass
class EmbeddedNode:
    name: str
    url: str
    token: str
    flows: list[dict[str, Any]]
    trust: Trust = field(default_factory=Trust)


class NodeLink(BaseModel):
    """A node proves who it is with its agent credentials (to unlink)."""

    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=100)
    secret: str = Field(min_length=1, max_length=200)


class NodeToken(NodeLink):
    """... and hands over its API token (to link)."""

    token: str = Field(min_length=16, max_length=200)


class NodeDirectory:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.embedded: dict[str, EmbeddedNode] = {}
        self._tokens: dict[str, str] = {}
        self._unregistered: dict[str, float] = {}
        #: One connection pool per certificate trusted (plain HTTP nodes share one).
        self._pools: dict[Trust, httpx.AsyncClient] = {}

    def http(self, trust: Trust) -> httpx.AsyncClient:
        """The pool for nodes trusted by ``trust`` (their certificate, sent by the node over
        its authenticated channel, or the hub's own for the embedded node)."""
        pool = self._pools.get(trust)
        if pool is None:
            pool = self._pools[trust] = httpx.AsyncClient(
                timeout=httpx.Timeout(10, read=None), verify=trust.context())
        return pool

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()

    def add_embedded(self, name: str, url: str, token: str, flows: list[dict[str, Any]],
                     trust: Trust | None = None) -> None:
        self.embedded[name] = EmbeddedNode(name, url, token, flows, trust or Trust())
        self._tokens[name] = token  # its token names it: a node, not the operator

    def node_for(self, token: str) -> str | None:
        """The linked node whose API token ``token`` is, if any (every one compared, in
        constant time, so the answer's timing says nothing about which came close)."""
        found = None
        for name, known in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = name
        return found

    async def link(self, name: str, body: NodeLink) -> None:
        try:
            await self._hub.registry.authenticate(
                Hello(kind="node", name=name, agent_id=body.agent_id, secret=body.secret))
        except AuthError as exc:
            raise HTTPException(401 if exc.code == 4401 else 403, exc.reason) from None

    def _listed(self, name: str) -> bool:
        component = self._hub.registry.components.get(name)
        if component is None or component.kind != "node":
            return False
        gone = self._unregistered.get(name)
        return gone is None or (component.registered_at or 0) > gone

    def entries(self) -> list[dict[str, Any]]:
        out = [
            {"name": e.name, "state": "up", "embedded": True, "url": e.url,
             "flows": e.flows, "linked": True, "last_seen": time.time()}
            for e in self.embedded.values()
        ]
        for component in self._hub.registry.components.values():
            if not self._listed(component.id):
                continue
            config = component.config
            out.append({
                "name": component.id, "state": component.state.value, "embedded": False,
                "url": config.get("url"), "flows": config.get("flows", []),
                "linked": component.id in self._tokens, "last_seen": component.last_seen,
            })
        return sorted(out, key=lambda e: str(e["name"]))

    def target(self, name: str) -> tuple[str, str, Trust]:
        """The node's base URL, token and certificate, or the HTTP error that says why not."""
        if name in self.embedded:
            e = self.embedded[name]
            return e.url, e.token, e.trust
        if not self._listed(name):
            raise HTTPException(404, f"no node {name!r}; GET /api/v1/nodes lists them")
        component = self._hub.registry.components[name]
        if component.link is None:
            raise HTTPException(503, f"node {name} is {component.state.value} (not connected)")
        url, token = component.config.get("url"), self._tokens.get(name)
        if not url or not token:
            raise HTTPException(503, f"node {name} has not handed the hub its address and "
                                     "token yet; retry in a moment")
        certificate = component.config.get("certificate")
        trust = Trust((certificate,)) if isinstance(certificate, str) and certificate else Trust()
        return str(url).rstrip("/"), token, trust


def router(directory: NodeDirectory) -> APIRouter:
    api = APIRouter(prefix="/api/v1/nodes", tags=["nodes"],
                    dependencies=[Depends(require(Need.READ))])
    #: A node's own calls, authenticated by its agent id and secret in the body.
    by_nodes = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])

    @api.get("")
    async def list_nodes() -> list[dict[str, Any]]:
        """Registered nodes (embedded and standalone), their state, address and flows."""
        return directory.entries()

    @by_nodes.post("/{name}/token", status_code=204, include_in_schema=True)
    async def link(name: NodeName, body: NodeToken, request: Request) -> None:
        """A node hands over its API token (agent credentials, not the operator token)."""
        await agent_checked(request, body.secret, lambda: directory.link(name, body))
        directory._tokens[name] = body.token
        directory._unregistered.pop(name, None)
        await directory._hub.events.append("node.linked", name, {})

    @by_nodes.post("/{name}/unregister", status_code=204)
    async def unregister(name: NodeName, body: NodeLink, request: Request) -> None:
        """A node shutting down leaves the list (its component goes down as usual)."""
        await agent_checked(request, body.secret, lambda: directory.link(name, body))
        directory._tokens.pop(name, None)
        directory._unregistered[name] = time.time()
        await directory._hub.events.append("node.unregistered", name, {})

    async def proxy(name: NodeName, path: ProxiedPath, request: Request) -> StreamingResponse:
        """The node's ``/node/v1/{path}``, forwarded with the node's own token."""
        if request.method != "GET":
            authorize(request, Need.FLOW)  # an operator, or a node's flow (nested runs)
        url, token, trust = directory.target(name)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PROXY_BODY:
                raise HTTPException(413, f"body is over the {MAX_PROXY_BODY} byte limit")
        headers = {k: v for k, v in request.headers.items() if k in REQUEST_HEADERS}
        headers["authorization"] = f"Bearer {token}"
        http = directory.http(trust)
        outgoing = http.build_request(
            request.method, f"{url}/node/v1/{path}", params=request.query_params,
            content=bytes(body), headers=headers,
        )
        try:
            response = await http.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"node {name} at {url} did not answer: {exc}") from None
        return StreamingResponse(
            response.aiter_raw(), status_code=response.status_code,
            headers={k: v for k, v in response.headers.items() if k in RESPONSE_HEADERS},
            background=BackgroundTask(response.aclose),
        )

    # A node's API reads with GET and changes with POST, so those are the methods the proxy
    # forwards (one operation id each); a proxied answer keeps the node's status.
    for method, statuses in (("GET", (200,)), ("POST", (200, 201))):
        api.add_api_route(
            "/{name}/{path:path}", proxy, methods=[method],
            operation_id=f"proxy_to_node_{method.lower()}", response_class=StreamingResponse,
            responses={status: {"description": "the node's answer",
                                "content": {"application/json": {"schema": {}}}}
                       for status in statuses})

    routes = APIRouter()
    routes.include_router(by_nodes)
    routes.include_router(api)
    return routes
