"""A standalone node (``controlroom agent node``): its own server, store and hub link.

Start-up, top to bottom: open the node (store, recovered runs), bind and serve
``/node/v1`` on the node's own port with the node's own token (``<data-dir>/node.token``,
mode 0600), publish ``node.url`` for workers, then register with the hub as an agent of
kind ``node`` whose static config is ``{"url", "flows"}``. On every registration (the
first and after each reconnect) the node hands the hub its token with
``POST /api/v1/nodes/{name}/token``, proving who it is with its agent id and secret, so
the hub can proxy to it. Shutdown, bottom to top: unregister from the hub, close the
agent channel (1000), stop the server, close the store. Workers are left running: a
restarted node picks them up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from backend import __version__, openapi_links, problems
from backend.agents import credentials
from backend.agents.session import AgentSession, SessionSettings
from backend.agents.urls import hub_http_base
from backend.client import ClientError, HubClient, HubError
from backend.hub.throttle import FailureThrottle
from backend.node.api import router
from backend.node.service import Node, NodeSettings, load_or_create_token
from backend.server import EmbeddedServer, bind
from backend.tls import TlsSettings

log = logging.getLogger(__name__)

DEFAULT_NODE_PORT = 8751


def create_node_app(node: Node, token: str) -> FastAPI:
    """A standalone node's app: ``/node/v1`` behind the node's own token, and the one open
    route, ``GET /api/v1/health`` (liveness and version, as the hub's)."""
    app = FastAPI(title=f"Control Room node {node.name}", version=__version__,
                  description="A standalone node service: flows, runs, locks.")
    problems.install(app, finish=openapi_links.add,
                     storage=[("/", "the node's data dir", node.settings.data_dir)])
    app.state.operator_token = token
    app.state.throttle = FailureThrottle()

    @app.get("/api/v1/health", tags=["node"])
    async def health() -> dict[str, Any]:
        """Liveness and version only: the one route open without a token."""
        return {"status": "ok", "version": __version__}

    app.include_router(router(node))
    return app


@dataclass
class NodeAgentSettings:
    session: SessionSettings
    host: str = "127.0.0.1"
    port: int = DEFAULT_NODE_PORT
    flows: list[Path] = field(default_factory=list)
    advertise_url: str | None = None
    #: As the hub's: HTTPS beyond loopback (``mode="on"``: on loopback too).
    tls: TlsSettings = field(default_factory=TlsSettings)


class NodeAgent:
    def __init__(self, settings: NodeAgentSettings) -> None:
        self.settings = settings
        data_dir = settings.session.data_dir
        self.node = Node(NodeSettings(data_dir, name=settings.session.name,
                                      flows=list(settings.flows)))
        self.token = ""
        self.url = ""
        self.hub_url = hub_http_base(settings.session.hub_url)
        self.server: EmbeddedServer | None = None
        self.session: AgentSession | None = None
        self._hub = HubClient(self.hub_url, timeout=10)
        self.certificate = ""

    async def start(self) -> None:
        data_dir = self.settings.session.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.token = load_or_create_token(data_dir / "node.token")
        sock = bind(self.settings.host, self.settings.port)
        try:
            await self.node.startup()
            app = create_node_app(self.node, self.token)
            self.server = EmbeddedServer(app, sock, self._tls())
            await self.server.start()
        except BaseException:
            sock.close()
            await self.node.store.close()
            raise
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.certificate else "http"
        self.url = self.settings.advertise_url or f"{scheme}://{shown}:{self.server.port}"
        self.node.listening(self.url, self.hub_url, self.token, certificate=self.certificate)
        log.info("node %s serving on %s", self.node.name, self.url)
        self.settings.session.static_config = {
            **self.settings.session.static_config,
            "url": self.url, "flows": self.node.catalog.entries(),
            # sent over the authenticated channel: the hub's proxy trusts exactly this
            **({"certificate": self.certificate} if self.certificate else {}),
        }
        self.session = AgentSession(self.settings.session, on_connected=self._link)

    def _tls(self) -> tuple[Path, Path] | None:
        """The certificate to serve beyond loopback (made in ``<data-dir>/tls``)."""
        settings = self.settings
        certificates = settings.tls.certificates(settings.session.data_dir / "tls",
                                                 settings.host)
        if certificates is None:
            return None
        identity = certificates.current
        assert identity is not None and identity.key_file is not None
        self.certificate = identity.pem
        log.info("serving TLS with certificate %s", identity.fingerprint)
        return identity.cert_file, identity.key_file

    async def _link(self, session: AgentSession) -> None:
        if session.trust != self._hub.trust:  # the hub's certificate, as the session pinned it
            await self._hub.aclose()
            self._hub = HubClient(self.hub_url, timeout=10, trust=session.trust)
        self.node.hub_trust = session.trust
        saved = credentials.load(self.settings.session.data_dir)
        if saved is None:
            log.error("registered but no credentials saved; the hub cannot proxy to us")
            return
        for attempt in range(5):
            try:
                await self._hub.link_node(self.node.name, saved.agent_id, saved.secret,
                                          self.token)
                log.info("handed the hub this node's token")
                return
            except HubError as exc:
                log.error("the hub refused this node's token: %s", exc.message)
                return
            except ClientError as exc:
                log.warning("could not hand the hub our token (%s); retrying", exc.message)
                await asyncio.sleep(0.2 * (attempt + 1))

    async def run(self) -> None:
        """Stay registered until :meth:`stop` (raises AgentFatal if the hub refuses us)."""
        assert self.session is not None
        await self.session.run()

    async def stop(self) -> None:
        saved = credentials.load(self.settings.session.data_dir)
        if saved is not None and self.session is not None and self.session.connected.is_set():
            with contextlib.suppress(ClientError):
                await self._hub.unregister_node(self.node.name, saved.agent_id, saved.secret,
                                                within_s=2)
        if self.session is not None:
            await self.session.stop()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.stop()
        await self.node.shutdown()
        await self._hub.aclose()
