"""Every route the hub's app serves, walked from the app itself (so none is forgotten)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute

from backend.host import Host, HostSettings, create_app

#: The documentation pages the framework serves beside the API.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def served(tmp_path: Path) -> set[tuple[str, str]]:
    """``(method, path)`` for every HTTP route and ``("WS", path)`` for every WebSocket."""
    host = Host(HostSettings(data_dir=tmp_path, port=0))
    app = create_app(host.hub, host.node, host.nodes)
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
