"""A registered component as the hub holds it, and the hub's end of its agent link.

Its own module because both the registry (which creates and updates components) and the
dispatcher (which hands them to the parts that handle agent messages) need the type, and
neither should need the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from backend.hub.health import Health
from backend.protocol.messages import Message


class AgentLink(Protocol):
    """The hub's end of one agent connection, whatever the transport."""

    peer_host: str | None

    async def send(self, message: Message) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class Component:
    id: str
    kind: str
    state: Health
    agent_id: str | None = None
    static_config: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    last_seen: float | None = None
    rtt_ms: float | None = None
    report: dict[str, Any] | None = None
    registered_at: float | None = None
    link: AgentLink | None = None

    def view(self) -> dict[str, Any]:
        """The component as the HTTP API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "last_seen": self.last_seen,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "config": self.config,
            "connected": self.link is not None,
            "registered_at": self.registered_at,
            "report": self.report,
        }
