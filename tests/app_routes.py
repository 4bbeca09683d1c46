"""Every route the hub's (and a standalone node's) app serves, walked from the app itself
(so none is forgotten), and how a walk calls them."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from backend.host import Host, HostSettings, create_app
from backend.node import Node, NodeSettings
from backend.node.agent import create_node_app

#: Routes with their own credentials instead of a bearer token (docs/security.md):
#: health is open; agents authenticate in the channel's hello; a runner uploads with its
#: agent id and secret; a node links and unlinks with its agent id and secret; a flow
#: worker with its run's own token.
OWN_CREDENTIALS = {
    ("GET", "/api/v1/health"),
    ("WS", "/api/v1/agents"),
    ("PUT", "/api/v1/jobs/{job_id}/artifacts/{name}"),
    ("POST", "/api/v1/nodes/{name}/token"),
    ("POST", "/api/v1/nodes/{name}/unregister"),
    ("WS", "/node/v1/workers/{fid}"),
}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def ws_refused(url: str, headers: dict[str, str], tls: ssl.SSLContext | None = None) -> bool:
    async def attempt() -> bool:
        try:
            async with connect(url, additional_headers=headers, open_timeout=10, ssl=tls):
                return False
        except InvalidStatus:
            return True

    return asyncio.run(attempt())


#: The documentation pages the framework serves beside the API.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def served(tmp_path: Path) -> set[tuple[str, str]]:
    """``(method, path)`` for every HTTP route and ``("WS", path)`` for every WebSocket."""
    host = Host(HostSettings(data_dir=tmp_path, port=0))
    return _routes(create_app(host.hub, host.node, host.nodes))


def served_by_node(tmp_path: Path) -> set[tuple[str, str]]:
    """The same for a standalone node's app (``controlroom agent node``)."""
    return _routes(create_node_app(Node(NodeSettings(tmp_path)), "unused"))


def _routes(app: Any) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()

    def walk(entries: list[Any], prefix: str) -> None:
        for r in entries:
            if isinstance(r, APIRoute) and r.path not in DOCS:
                routes.update((m, prefix + r.path) for m in r.methods - {"HEAD"})
            elif isinstance(r, APIWebSocketRoute):
                routes.add(("WS", prefix + r.path))
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.120)
                walk(r.original_router.routes, prefix + r.include_context.prefix)

    walk(app.router.routes, "")
    return {(m, p.replace("{path:path}", "{path}")) for m, p in routes}
