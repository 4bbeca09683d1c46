"""What the hub knows about each runner beyond its component: phase, labels, hardware,
free resources and load, persisted in the ``runners`` table.

Health is the component's (``GET /api/v1/components`` and ``GET /api/v1/runners`` agree);
this adds the runner's own reports: start-up phase (``starting``, ``ready``,
``shutdown``), the inventory (applied as a full copy or a change, checked by digest) and
the last heartbeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from backend.runner import inventory
from backend.store import Store


@dataclass
class RunnerInfo:
    id: str
    phase: str = "starting"
    labels: list[str] = field(default_factory=list)
    hardware: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    free: dict[str, float] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    last_heartbeat: float | None = None
    revoked_at: float | None = None
    #: Bumped whenever the runner's situation changes, so a refusal is retried only then.
    epoch: int = 0


class RunnerBook:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.runners: dict[str, RunnerInfo] = {}

    async def load(self) -> None:
        for row in await self._store.query("SELECT * FROM runners"):
            self.runners[row["id"]] = RunnerInfo(
                id=row["id"], phase=row["phase"], labels=json.loads(row["labels"]),
                hardware=json.loads(row["hardware"]), digest=row["digest"],
                free=json.loads(row["free"]), last_heartbeat=row["last_heartbeat"],
                revoked_at=row["revoked_at"],
            )

    def get(self, name: str) -> RunnerInfo:
        info = self.runners.get(name)
        if info is None:
            info = self.runners[name] = RunnerInfo(id=name)
        return info

    def apply_inventory(self, info: RunnerInfo, full: bool, hardware: dict[str, Any],
                        removed: list[str], digest: str) -> bool:
        """Apply a full copy or a change; ``False`` when the result does not match ``digest``
        (the hub's copy was stale: ask for everything)."""
        base: dict[str, Any] = {} if full else info.hardware
        merged = inventory.patch(base, hardware, removed)
        if inventory.digest(merged) != digest:
            return False
        info.hardware, info.digest = merged, digest
        return True

    async def save(self, info: RunnerInfo) -> None:
        await self._store.execute(
            "INSERT INTO runners (id, phase, labels, hardware, digest, free, last_heartbeat, "
            "revoked_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "phase=excluded.phase, labels=excluded.labels, hardware=excluded.hardware, "
            "digest=excluded.digest, free=excluded.free, "
            "last_heartbeat=excluded.last_heartbeat, revoked_at=excluded.revoked_at",
            (info.id, info.phase, json.dumps(info.labels), json.dumps(info.hardware),
             info.digest, json.dumps(info.free), info.last_heartbeat, info.revoked_at),
        )
