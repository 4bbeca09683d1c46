"""What each agent kind announces about itself when it registers.

The static config is the agent's own defaults merged with ``--config FILE``; the hub
lays the stored config over it. Engine and driver do no audio yet; their defaults name
the settings the audio core will read, so an operator can already see and change them.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from backend.hub.merge import deep_merge

DEFAULT_STATIC_CONFIG: dict[str, dict[str, Any]] = {
    "engine": {"sample_rate": 48000, "block_size": 1024, "channels": 2},
    "driver": {"instances": []},
}

AGENT_COMMAND_KINDS = tuple(DEFAULT_STATIC_CONFIG)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a ``--config`` file: JSON (``.json``) or TOML (anything else)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold an object at the top level")
    return data


def static_config(kind: str, config_file: Path | None) -> dict[str, Any]:
    base = copy.deepcopy(DEFAULT_STATIC_CONFIG.get(kind, {}))
    if config_file is None:
        return base
    return deep_merge(base, load_config_file(config_file))
