"""An agent's long-lived identity: the id and secret it got at enrollment.

Kept in ``<data-dir>/credentials.json``, mode 0600, written atomically, so a crash while
saving never leaves an agent with a half-written secret and no way back in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from backend.hub.tokens import write_secret_file

FILENAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    agent_id: str
    secret: str
    name: str
    kind: str
    hub: str


def load(data_dir: Path) -> Credentials | None:
    path = data_dir / FILENAME
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Credentials(**{k: raw[k] for k in ("agent_id", "secret", "name", "kind", "hub")})


def save(data_dir: Path, credentials: Credentials) -> Path:
    path = data_dir / FILENAME
    write_secret_file(path, json.dumps(asdict(credentials), indent=2) + "\n")
    return path
