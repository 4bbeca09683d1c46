"""The node service: flow catalog and (later) runs, event streams and locks."""

from backend.node.flows import Catalog, Flow, flow
from backend.node.service import Node, router

__all__ = ["Catalog", "Flow", "Node", "flow", "router"]
