"""The hub: registry, config store, enrollments, media and event log over one SQLite store.

Its life reads top to bottom: :meth:`Hub.startup` opens the store and brings back the
stored components; :meth:`Hub.shutdown` tells every agent the hub is going away and closes
the store. The HTTP and WebSocket surface is in :mod:`backend.hub.api`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from backend.hub import tokens
from backend.hub.events import EventLog
from backend.hub.health import Health, HealthSettings
from backend.hub.jobs.service import DEFAULT_LEASE_S, JobService
from backend.hub.media import DEFAULT_LIMIT_BYTES, MediaStore
from backend.hub.named_tokens import NamedTokens
from backend.hub.registry import Registry
from backend.hub.schema import MIGRATIONS
from backend.hub.tasks.farm import FarmRenders
from backend.hub.tasks.service import TaskService
from backend.hub.throttle import FailureThrottle
from backend.store import Store
from backend.tls import Certificates

log = logging.getLogger(__name__)

Role = Literal["studio", "cloud"]


@dataclass(frozen=True)
class HubSettings:
    data_dir: Path
    role: Role = "studio"
    health: HealthSettings = field(default_factory=HealthSettings)
    enrollment_ttl_s: float = tokens.DEFAULT_ENROLLMENT_TTL_S
    #: How long the engine and drivers have to accept a pushed spec.
    push_timeout_s: float = 5.0
    #: How long a runner may be away before its running jobs are marked lost.
    runner_lease_s: float = DEFAULT_LEASE_S
    #: Failed authentications allowed per client address and per credential in a window
    #: before 429 (see :mod:`backend.hub.throttle`).
    auth_failures: int = 20
    auth_window_s: float = 60.0
    #: The largest media upload (``--media-limit-mb``), see :mod:`backend.hub.media`.
    media_limit_bytes: int = DEFAULT_LIMIT_BYTES


class Hub:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir / "hub.sqlite3", MIGRATIONS)
        self.events = EventLog(self.store)
        self.named_tokens = NamedTokens(self.store)
        self.registry = Registry(self.store, self.events, settings.health)
        self.media = MediaStore(self.store, self.events, settings.data_dir,
                                settings.media_limit_bytes)
        self.tasks = TaskService(self.registry, self.store, self.events, settings.data_dir,
                                 settings.push_timeout_s, media=self.media)
        self.jobs = JobService(self.registry, self.store, self.events, settings.data_dir,
                               settings.runner_lease_s, media=self.media)
        self.farm = self.tasks.farm = FarmRenders(self.tasks, self.jobs)
        self.operator_token = ""
        self.started_at = 0.0
        self.throttle = FailureThrottle(settings.auth_failures, settings.auth_window_s)
        #: The certificate it serves and the next one it announced; None on plain HTTP.
        self.tls: Certificates | None = None

    async def startup(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.operator_token = tokens.load_or_create_operator_token(
            self.settings.data_dir / "admin.token"
        )
        await self.store.open()
        await self.named_tokens.load()
        await self.registry.load()
        await self.media.load()
        await self.tasks.load()
        await self.jobs.load()
        await self.farm.recover()
        self.started_at = time.time()
        await self.events.append("hub.started", "hub", {"role": self.settings.role})

    async def shutdown(self) -> None:
        await self.tasks.shutdown()
        await self.jobs.shutdown()
        await self.registry.close_all("hub shutting down")
        await self.events.append("hub.stopped", "hub", {})
        await self.store.close()

    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in Health}
        for component in self.registry.components.values():
            counts[component.state.value] += 1
        return counts
