"""The node service: the flows it offers and (in later work) the runs it drives.

Embedded next to the hub in the desktop app and ``--headless``; a standalone node
(``agent node``) serves the same routes on its own port.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from backend.node.examples import BUILTIN
from backend.node.flows import Catalog


class Node:
    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog(BUILTIN)

    async def startup(self) -> None:
        """Nothing to open yet: runs and their store come with the flow runner."""

    async def shutdown(self) -> None:
        """Counterpart of :meth:`startup`."""


def router(node: Node) -> APIRouter:
    api = APIRouter(prefix="/node/v1", tags=["node"])

    @api.get("/flows")
    async def flows() -> list[dict[str, Any]]:
        """The flows this node offers: name, description and the JSON Schema of inputs."""
        return node.catalog.entries()

    return api
