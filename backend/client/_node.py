"""The client of one node's ``/node/v1`` routes: flows, runs, their events and locks.

The same routes are served by a node itself and, for every registered node, by the hub's
proxy at ``/api/v1/nodes/{name}``; :class:`NodeClient` takes the prefix, so a flow that
runs a child on another node and a console that answers a lock use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx

from backend.client._follower import Follower
from backend.client._http import body, send, tls_for, unreachable
from backend.client._routes import route
from backend.client._stream import follow
from backend.node.fold import RunEvent
from backend.tls import Trust

#: A run's stream is given up after this long without reopening (a node restart is shorter).
RECONNECT_FOR_S = 300.0


@dataclass(frozen=True)
class Verdict:
    """How a node answered a lock candidate: 200 released; 422 denied (``reason``) or
    invalid for the lock's schema (``detail``); 409 the lock is closed; 504 no verdict in
    time."""

    status: int
    body: Any

    @property
    def released(self) -> bool:
        return self.status == 200


class NodeClient:
    """The ``/node/v1`` routes of one node, directly (``prefix="/node/v1"``) or through
    the hub's proxy (``prefix="/api/v1/nodes/NAME"``)."""

    def __init__(self, http: httpx.AsyncClient, prefix: str,
                 reconnect_for_s: float = RECONNECT_FOR_S) -> None:
        self._http = http
        self.prefix = prefix.rstrip("/")
        self.reconnect_for_s = reconnect_for_s
        self._owns_pool = False

    @classmethod
    def direct(cls, base_url: str, token: str, *, timeout: float = 30.0,
               max_connections: int = 100, trust: Trust | None = None) -> NodeClient:
        """A client of a node itself (a standalone node's own URL and token), owning its
        connection pool; close it with :meth:`aclose`. Clients of the hub reach nodes
        through :meth:`HubClient.node` instead."""
        http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            verify=tls_for(base_url, trust), limits=httpx.Limits(max_connections=max_connections))
        client = cls(http, "/node/v1")
        client._owns_pool = True
        return client

    async def aclose(self) -> None:
        """Close the pool if this client made it (:meth:`direct`); else nothing to do."""
        if self._owns_pool:
            await self._http.aclose()

    @property
    def _url(self) -> str:
        return f"{self._http.base_url}{self.prefix}"

    async def _get(self, path: str, what: str, **kwargs: Any) -> Any:
        return body(await send(self._url, self._http.get(self.prefix + path, **kwargs), what))

    @route("GET", "/node/v1/flows")
    async def flows(self) -> list[dict[str, Any]]:
        """The flow catalog: ``name``, ``description``, ``inputs_schema`` of each."""
        return list(await self._get("/flows", "flows"))

    @route("GET", "/node/v1/runs")
    async def runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent runs, newest first."""
        return list(await self._get("/runs", "runs", params={"limit": limit}))

    @route("POST", "/node/v1/runs")
    async def start(self, flow: str, inputs: dict[str, Any] | None = None,
                    parent: dict[str, Any] | None = None) -> str:
        """Launch ``flow``; its ``fid`` at once (the run goes on in a worker)."""
        request: dict[str, Any] = {"flow": flow, "inputs": inputs}
        if parent is not None:
            request["parent"] = parent
        response = await send(self._url, self._http.post(f"{self.prefix}/runs", json=request),
                              f"run {flow}")
        return str(body(response)["fid"])

    @route("GET", "/node/v1/runs/{fid}")
    async def state(self, fid: str) -> dict[str, Any]:
        return dict(await self._get(f"/runs/{fid}", f"run {fid}"))

    @route("POST", "/node/v1/runs/{fid}/cancel")
    async def cancel(self, fid: str) -> dict[str, Any]:
        response = await send(self._url, self._http.post(f"{self.prefix}/runs/{fid}/cancel"),
                              f"cancel {fid}")
        return dict(body(response))

    @route("GET", "/node/v1/runs/{fid}/lock/{lid}/candidate")
    async def demand(self, fid: str, lid: str) -> dict[str, Any]:
        """What the lock asks for: ``prompt``, ``schema``, ``deadline``."""
        return dict(await self._get(f"/runs/{fid}/lock/{lid}/candidate", f"lock {lid}"))

    @route("POST", "/node/v1/runs/{fid}/lock/{lid}/candidate")
    async def submit(self, fid: str, lid: str, candidate: Any) -> Verdict:
        """Submit a candidate and wait for the flow's verdict (no read timeout: the
        lock's own ``release-timeout`` bounds the wait)."""
        try:
            response = await self._http.post(
                f"{self.prefix}/runs/{fid}/lock/{lid}/candidate", json=candidate,
                timeout=httpx.Timeout(10, read=None))
        except httpx.TransportError as exc:
            raise unreachable(self._url, exc) from None
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        return Verdict(response.status_code, answer)

    @route("GET", "/node/v1/runs/{fid}/events")
    async def events(self, fid: str, after: int = 0, *, stop: asyncio.Event | None = None,
                     idle_s: float | None = None) -> AsyncGenerator[RunEvent, None]:
        """Every event of the run after ``after`` until ``final`` (or ``stop``), each once,
        resuming across disconnects and node restarts (see :mod:`backend.client._stream`).

        Close it with ``contextlib.aclosing`` when leaving early.
        """
        loop = asyncio.get_running_loop()
        follower = Follower(after, now=loop.time(), patience_s=self.reconnect_for_s)
        records = follow(self._http, f"{self.prefix}/runs/{fid}/events", follower,
                         what=f"events of {fid}", stop=stop, idle_s=idle_s, clock=loop.time)
        async with contextlib.aclosing(records):
            async for record in records:
                data = record.data
                event = RunEvent(record.id, data["ts"], data["type"], data["data"])
                yield event
                if event.type == "final":
                    return


__all__ = ["NodeClient", "Verdict"]
