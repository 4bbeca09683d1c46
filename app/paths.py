"""Where things live by default (platformdirs), so no mode needs a flag to start."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "controlroom"


def default_hub_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / "hub"


def default_agent_dir(kind: str, name: str) -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / "agents" / f"{kind}-{name}"
