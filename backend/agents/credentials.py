"""An agent's long-lived identity: the id and secret it got at enrollment, and the hub
certificates it trusts.

Kept in ``<data-dir>/credentials.json``, mode 0600, written atomically, so a crash while
saving never leaves an agent with a half-written secret and no way back in. ``anchors``
are the hub's certificates (PEM) whose fingerprint matched the pin, plus the next one the
hub announced; ``pin`` is a fingerprint still to be matched (the enrollment's, or one an
operator set with ``controlroom agent repin``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
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
    pin: str = ""
    anchors: tuple[str, ...] = field(default=())


def load(data_dir: Path) -> Credentials | None:
    path = data_dir / FILENAME
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Credentials(
        **{k: raw[k] for k in ("agent_id", "secret", "name", "kind", "hub")},
        pin=raw.get("pin", ""), anchors=tuple(raw.get("anchors", ())),
    )


def repin(data_dir: Path, pin: str) -> Credentials:
    """Trust the hub by ``pin`` from now on, dropping the certificates trusted so far: the
    operator's answer to an agent that missed a certificate rotation."""
    saved = load(data_dir)
    if saved is None:
        raise FileNotFoundError(f"no {FILENAME} in {data_dir}: this agent never enrolled; "
                                "start it with --token and --pin instead")
    updated = replace(saved, pin=pin, anchors=())
    save(data_dir, updated)
    return updated


def save(data_dir: Path, credentials: Credentials) -> Path:
    path = data_dir / FILENAME
    write_secret_file(path, json.dumps(asdict(credentials), indent=2) + "\n")
    return path
