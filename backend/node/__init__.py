"""The node service: flows in worker processes, durable event streams, state, locks.

Public surface: declare flows with :func:`flow` (the decorated function gets a
:class:`Context`), run a :class:`Node` with :class:`NodeSettings`, mount :func:`router`,
and talk to hubs and nodes with :class:`backend.client.HubClient`. ``docs/flows.md`` is the guide.

Names are imported on first use: a worker process (``python -m backend.node.worker``)
imports this package too, and must not pay for the HTTP server and the hub it never uses
(that would add about a second to every run's start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.node.agent import NodeAgent, NodeAgentSettings
    from backend.node.api import router
    from backend.node.context import ChildFailed, Context, LockTimeout
    from backend.node.flows import Catalog, Flow, flow
    from backend.node.service import Node, NodeSettings

_WHERE = {
    "router": "backend.node.api",
    "NodeAgent": "backend.node.agent",
    "NodeAgentSettings": "backend.node.agent",
    "ChildFailed": "backend.node.context",
    "Context": "backend.node.context",
    "LockTimeout": "backend.node.context",
    "Catalog": "backend.node.flows",
    "Flow": "backend.node.flows",
    "flow": "backend.node.flows",
    "Node": "backend.node.service",
    "NodeSettings": "backend.node.service",
}

__all__ = [
    "Catalog",
    "ChildFailed",
    "Context",
    "Flow",
    "LockTimeout",
    "Node",
    "NodeAgent",
    "NodeAgentSettings",
    "NodeSettings",
    "flow",
    "router",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'backend.node' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
