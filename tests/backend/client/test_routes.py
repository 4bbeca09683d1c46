"""The client has a method for every route the hub and its node serve, and no other."""

from __future__ import annotations

from pathlib import Path

from app_routes import served

from backend.client import ROUTES, HubClient, NodeClient

#: Routes no client calls on purpose: the agent channel has its own protocol
#: (backend.protocol), and a flow worker's channel is its node's business.
NOT_FOR_CLIENTS = {("WS", "/api/v1/agents"), ("WS", "/node/v1/workers/{fid}")}


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
