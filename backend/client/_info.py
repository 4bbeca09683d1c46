"""What a hub says about itself (``GET /api/v1/hub``), typed for the console."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HealthInfo:
    """The hub's health-check settings: how soon a silent component turns down."""

    interval_s: float
    timeout_s: float
    misses: int


@dataclass(frozen=True)
class HubInfo:
    """A hub's description; paths are on the hub's machine (shown, never opened here)."""

    url: str
    api: int
    version: str
    role: str
    host: str
    data_dir: str
    admin_token: str
    health: HealthInfo
    started_at: float
    last_event_id: int
    #: What the token attached with may do: ``operator``, ``viewer`` or ``node``.
    access: str = "operator"
    #: The fingerprint of the certificate the hub serves ("" on plain HTTP): what the
    #: agents a console spawns are started with (``--pin``).
    pin: str = ""

    @property
    def secure(self) -> bool:
        return self.url.startswith("https:")

    @classmethod
    def from_json(cls, url: str, body: dict[str, Any]) -> HubInfo:
        """Raises KeyError, TypeError or ValueError on an answer that is not a hub's."""
        health = body["health"]
        return cls(
            url=url, api=int(body["api"]), version=str(body["version"]),
            role=str(body["role"]), host=str(body["host"]), data_dir=str(body["data_dir"]),
            admin_token=str(body["admin_token"]),
            health=HealthInfo(float(health["interval_s"]), float(health["timeout_s"]),
                              int(health["misses"])),
            started_at=float(body["started_at"]), last_event_id=int(body["last_event_id"]),
            access=str(body.get("access", "operator")),
            pin=str((body.get("tls") or {}).get("fingerprint") or ""),
        )
