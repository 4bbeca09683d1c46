"""One process's services: hub, node service and the HTTP server they share.

The desktop app and ``--headless`` both run a :class:`Host`: ``start`` opens the hub and
node, binds the socket, serves, writes ``<data-dir>/hub.url`` and, with an upstream, joins
a cloud-role hub; ``stop`` undoes it in reverse order. A cloud-role host runs the hub only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from backend import __version__, openapi_links, problems
from backend.agents.upstream import Upstream, UpstreamLink
from backend.hub import HealthSettings, Hub, HubSettings, tokens
from backend.hub import router as hub_router
from backend.hub.jobs.api import JobRequest
from backend.hub.jobs.api import router as jobs_router
from backend.hub.media import DEFAULT_LIMIT_BYTES
from backend.hub.media_api import router as media_router
from backend.hub.nodes import NodeDirectory
from backend.hub.nodes import router as nodes_router
from backend.hub.service import Role
from backend.hub.tasks.api import router as tasks_router
from backend.node import Node, NodeSettings
from backend.node import router as node_router
from backend.server import EmbeddedServer, bind
from backend.tls import TlsSettings, Trust

__all__ = ["DEFAULT_PORT", "Host", "HostSettings", "Upstream", "create_app"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8750


@dataclass(frozen=True)
class HostSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    role: Role = "studio"
    health: HealthSettings = field(default_factory=HealthSettings)
    upstream: Upstream | None = None
    runner_lease_s: float = 300.0
    auth_failures: int = 20
    auth_window_s: float = 60.0
    tls: TlsSettings = field(default_factory=TlsSettings)
    #: The largest media upload the hub takes (``--media-limit-mb``).
    media_limit_bytes: int = DEFAULT_LIMIT_BYTES


def create_app(hub: Hub, node: Node | None, nodes: NodeDirectory | None = None) -> FastAPI:
    app = FastAPI(
        title="Control Room",
        version=__version__,
        description="Hub (components, configs, enrollments, events) and node service.",
    )
    # A change is refused with 507 while the data dir it writes to is full (docs/reliability.md).
    rooms = [("/", "the hub's data dir", hub.settings.data_dir)]
    if node is not None:
        rooms.append(("/node/", "the node's data dir", node.settings.data_dir))
    problems.install(app, schemas={"JobRequest": JobRequest}, finish=openapi_links.add,
                     storage=rooms)
    app.state.operator_token = hub.operator_token
    app.state.named_tokens = hub.named_tokens
    app.state.throttle = hub.throttle
    app.state.report = hub.events.append
    app.include_router(hub_router(hub))
    app.include_router(tasks_router(hub.tasks))
    app.include_router(jobs_router(hub.jobs))
    app.include_router(media_router(hub.media, hub.tasks, hub.registry, hub.jobs))
    if node is not None:
        app.include_router(node_router(node))
    if nodes is not None:
        app.state.node_for = nodes.node_for
        app.include_router(nodes_router(nodes))
    return app


class Host:
    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.hub = Hub(HubSettings(settings.data_dir, settings.role, settings.health,
                                   runner_lease_s=settings.runner_lease_s,
                                   auth_failures=settings.auth_failures,
                                   auth_window_s=settings.auth_window_s,
                                   media_limit_bytes=settings.media_limit_bytes))
        self.node = (Node(NodeSettings(settings.data_dir / "node"))
                     if settings.role == "studio" else None)
        self.nodes = NodeDirectory(self.hub)
        self.server: EmbeddedServer | None = None
        self.upstream: UpstreamLink | None = None
        self.base_url = ""
        #: What this process's own clients (the embedded node, its flow workers, the
        #: embedded console) trust the hub by: its certificate, once it serves TLS.
        self.trust = Trust()

    def _tls(self) -> tuple[Path, Path] | None:
        """The certificate and key to serve, made at first start if the hub makes its own."""
        settings = self.settings
        certificates = settings.tls.certificates(settings.data_dir / "tls", settings.host)
        if certificates is None:
            return None
        identity = certificates.current
        assert identity is not None and identity.key_file is not None
        self.hub.tls = certificates
        self.trust = Trust((identity.pem,))
        log.info("serving TLS with certificate %s (%s)", identity.fingerprint,
                 "self-signed" if certificates.own else identity.cert_file)
        return identity.cert_file, identity.key_file

    async def start(self) -> None:
        sock = bind(self.settings.host, self.settings.port)
        try:
            await self.hub.startup()
            tls = self._tls()
            if self.node is not None:
                await self.node.startup()
            self.server = EmbeddedServer(create_app(self.hub, self.node, self.nodes), sock, tls)
            await self.server.start()
        except BaseException:
            sock.close()  # a half-started host must not keep the port or the store
            await self.hub.store.close()
            raise
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.hub.tls is not None else "http"
        self.base_url = f"{scheme}://{shown}:{self.server.port}"
        url_file = self.settings.data_dir / "hub.url"
        url_file.with_suffix(".tmp").write_text(self.base_url + "\n")
        url_file.with_suffix(".tmp").replace(url_file)  # readers never see it half-written
        if self.node is not None:  # the embedded node is listed without an agent link
            # The embedded node and its flow workers hold a node token (made per start,
            # kept in memory), not the operator's: least privilege, as a linked node.
            node_token = tokens.new_token(tokens.NODE_PREFIX)
            self.node.listening(self.base_url, self.base_url, node_token,
                                self.trust, "".join(self.trust.anchors))
            self.nodes.add_embedded(self.node.name, self.base_url, node_token,
                                    self.node.catalog.entries(), self.trust)
        log.info("hub listening on %s (role %s, data in %s)", self.base_url,
                 self.settings.role, self.settings.data_dir)
        if self.settings.upstream is not None:
            self.upstream = UpstreamLink(
                self.hub, self.settings.upstream, self.settings.data_dir / "upstream",
                self.base_url,
            )
            await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()
        await self.hub.registry.close_all("hub shutting down")
        if self.server is not None:
            await self.server.stop()
        if self.node is not None:
            await self.node.shutdown()
        await self.nodes.close()
        await self.hub.shutdown()
        log.info("hub stopped")
