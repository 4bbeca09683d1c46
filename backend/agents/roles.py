"""What each agent kind announces about itself when it registers.

The static config is the agent's own defaults merged with ``--config FILE``; the hub
lays the stored config over it and the agent applies the merge.

- engine: ``media_dir`` (where relative source paths in specs are found),
  ``insert_timeout_s`` (how long a block may take on a driver before the play or render
  fails), ``render_processes`` (how many processes share an offline render's tracks: 2 by
  default, at most one per core, uses the second core that scipy's GIL-holding filters
  otherwise leave idle; the engine keeps ``render_processes - 1`` worker processes forked
  and waiting; see docs/performance.md), ``media_cache_mb`` (4096: the bound of the cache
  of media fetched from the hub by hash, see :mod:`backend.agents.media_cache`).
- driver: ``instances``, the fixed instances it hosts (``id``, ``model``, ``params``). With
  none configured it hosts a default rack: ``NAME.eq``, ``NAME.comp`` and ``NAME.tape``.
  ``insert_listen`` (``HOST:PORT`` of the direct insert link, loopback and any free port by
  default; ``"off"`` sends every block through the hub; a change needs a restart) and
  ``insert_advertise`` (the host engines connect to, when it is not the listening host).
  A link listening beyond loopback is sealed (every frame encrypted and authenticated;
  ``insert_seal: "on"`` seals it on loopback too), and an engine refuses a plain link to
  another machine (its blocks then go through the hub).
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from backend.hub.merge import deep_merge

DEFAULT_STATIC_CONFIG: dict[str, dict[str, Any]] = {
    "engine": {"media_dir": ".", "insert_timeout_s": 2.0, "render_processes": 2,
               "media_cache_mb": 4096},
    "driver": {"insert_listen": "127.0.0.1:0"},
    "node": {},  # url and flows are filled in by the node itself (backend/node/agent.py)
    # backend/runner/runner.py (RunnerConfig): labels, heartbeat and report timing, the
    # grace between SIGTERM and SIGKILL, where render jobs find their media (by path; by
    # hash they are fetched into a cache bounded by media_cache_mb).
    "runner": {"labels": [], "heartbeat_s": 60.0, "report_interval_s": 1.0, "retry_s": 5.0,
               "grace_s": 10.0, "media_dir": ".", "media_cache_mb": 4096},
}


def default_rack(name: str) -> list[dict[str, Any]]:
    """What a driver started without configured instances hosts."""
    return [
        {"id": f"{name}.eq", "model": "eq", "params": {}},
        {"id": f"{name}.comp", "model": "compressor", "params": {}},
        {"id": f"{name}.tape", "model": "saturator", "params": {}},
    ]

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


def static_config(kind: str, config_file: Path | None, name: str = "") -> dict[str, Any]:
    config = copy.deepcopy(DEFAULT_STATIC_CONFIG.get(kind, {}))
    if config_file is not None:
        config = deep_merge(config, load_config_file(config_file))
    if kind == "driver" and not config.get("instances"):
        config["instances"] = default_rack(name)
    return config
