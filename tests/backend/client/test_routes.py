"""The client has a method for every route the hub and its node serve, and no other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute

from backend.client import ROUTES, HubClient, NodeClient
from backend.host import Host, HostSettings, create_app

#: Routes no client calls on purpose: the agent channel has its own protocol
#: (backend.protocol), and a flow worker's channel is its node's business.
NOT_FOR_CLIENTS = {("WS", "/api/v1/agents"), ("WS", "/node/v1/workers/{fid}")}
#: The documentation pages the framework serves beside the API.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def served(tmp_path: Path) -> set[tuple[str, str]]:
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


def test_every_served_route_has_a_client_method(tmp_path: Path) -> None:
    routes = served(tmp_path)
    assert len(routes) > 40  # the walk really found the app's routes
    missing = routes - set(ROUTES) - NOT_FOR_CLIENTS
    assert missing == set(), "add a HubClient/NodeClient method marked @route for these"


def test_every_client_method_calls_a_served_route(tmp_path: Path) -> None:
    assert set(ROUTES) - served(tmp_path) == set()


def test_marked_methods_are_public_methods_of_the_clients() -> None:
    for qualname in ROUTES.values():
        owner, name = qualname.split(".")
        assert not name.startswith("_")
        assert callable(getattr({"HubClient": HubClient, "NodeClient": NodeClient}[owner],
                                name))
