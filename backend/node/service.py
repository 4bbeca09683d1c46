"""The node service: the flows it offers and the runs it drives, as one start/stop unit.

Embedded next to the hub in the desktop app and ``--headless`` (data in
``<hub-data-dir>/node``); a standalone node (``agent node``, :mod:`backend.node.agent`)
serves the same routes on its own port from its own data dir. Its life reads top to
bottom: :meth:`Node.startup` opens the store and recovers runs (workers that outlived the
previous node process reconnect to this one), :meth:`Node.listening` publishes the address
workers connect to, :meth:`Node.shutdown` stops taking events and closes the store but
leaves workers running, so a restart does not end a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from backend.hub.tokens import write_secret_file
from backend.node.events import EventStore
from backend.node.flows import Catalog
from backend.node.loader import load_catalog
from backend.node.runs import Runs, WorkerSettings
from backend.node.schema import MIGRATIONS
from backend.store import Store
from backend.tls import Trust

log = logging.getLogger(__name__)

#: Largest JSON body a node route accepts (a run's inputs, a candidate).
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class NodeSettings:
    data_dir: Path
    name: str = "local"
    flows: list[Path] = field(default_factory=list)
    entry_points: bool = True
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    max_body_bytes: int = MAX_BODY_BYTES
    #: Durability of a commit: "FULL" survives power loss, "NORMAL" a process crash.
    synchronous: str = "FULL"


class Node:
    def __init__(self, settings: NodeSettings | None = None, catalog: Catalog | None = None):
        self.settings = settings or NodeSettings(Path("node-data"))
        self.catalog = catalog or load_catalog(self.settings.flows, self.settings.entry_points)
        self.store = Store(self.settings.data_dir / "node.sqlite3", MIGRATIONS)
        self.events = EventStore(self.store)
        self.hub_url = ""
        self.hub_token = ""
        #: What this node and its flow workers trust the hub's certificate by.
        self.hub_trust = Trust()
        self.base_url = ""
        self.runs = Runs(self.store, self.events, self.catalog, self.settings.data_dir,
                         self.settings.workers, self._hub_access)

    @property
    def name(self) -> str:
        return self.settings.name

    def _hub_access(self) -> tuple[str, str, str, tuple[str, ...]]:
        return self.name, self.hub_url, self.hub_token, self.hub_trust.anchors

    async def startup(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.store.execute(f"PRAGMA synchronous={self.settings.synchronous}")
        await self.events.start()
        await self.runs.recover()
        log.info("node %s: %d flows, %d runs on record", self.name, len(self.catalog),
                 len(self.runs.runs))

    def listening(self, base_url: str, hub_url: str = "", hub_token: str = "",
                  hub_trust: Trust | None = None, certificate: str = "") -> None:
        """The server is up at ``base_url``: tell workers (``node.url``, and ``node.crt``,
        the certificate it serves, when it serves TLS) where to connect and whom to trust."""
        self.base_url = base_url
        if hub_url:
            self.hub_url = hub_url
        if hub_token:
            self.hub_token = hub_token
        if hub_trust is not None:
            self.hub_trust = hub_trust
        _replace(self.settings.data_dir / "node.crt", certificate)
        _replace(self.settings.data_dir / "node.url", base_url + "\n")

    async def shutdown(self) -> None:
        await self.runs.stop()
        await self.events.stop()
        await self.store.close()


def load_or_create_token(path: Path) -> str:
    """A standalone node's own API token, kept in its data dir (mode 0600)."""
    if path.exists():
        return path.read_text().strip()
    import secrets

    token = "crn_" + secrets.token_urlsafe(32)
    write_secret_file(path, token + "\n")
    return token


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole (readers never see half of it); empty text removes it."""
    if not text:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
