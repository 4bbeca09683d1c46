"""The config store: merged at registration (stored wins) and pushed live."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from processes import AgentProcess, HubProcess, wait_until


def test_stored_config_is_merged_over_static_at_registration(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    static = tmp_path / "engine.toml"
    static.write_text('block_size = 2048\n[meters]\nrate_hz = 20\nhold_s = 1.5\n')
    r = hub.client.put(f"{hub.url}/api/v1/configs/engine-1",
                       json={"meters": {"rate_hz": 30}, "media_dir": None}, headers=hub.auth)
    assert r.status_code == 200 and r.json()["merged"] is None  # not registered yet
    assert hub.client.get(f"{hub.url}/api/v1/configs/engine-1").json() == {
        "meters": {"rate_hz": 30}, "media_dir": None}
    spawn_agent(hub, "engine-1", "engine", "", "--config", str(static))
    component = hub.wait_state("engine-1", "up")
    assert component["config"] == {
        "insert_timeout_s": 2.0, "render_processes": 2, "media_cache_mb": 4096,
        "block_size": 2048, "meters": {"rate_hz": 30, "hold_s": 1.5},
    }


def test_a_config_change_is_pushed_live_to_a_connected_agent(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    r = hub.client.put(f"{hub.url}/api/v1/configs/engine-1", json={"block_size": 256},
                       headers=hub.auth)
    assert r.status_code == 200
    body = r.json()
    assert body["pushed"] is True and body["merged"]["block_size"] == 256
    wait_until(lambda: "'block_size': 256" in agent.output(), 10, "the agent to apply it")
    assert hub.components()["engine-1"]["config"]["block_size"] == 256
    assert hub.components()["engine-1"]["state"] == "up"
    kinds = [e["event"] for e in hub.events()]
    assert "component.config" in kinds


def test_bad_config_files_are_refused_before_connecting(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([1, 2]))
    agent = spawn_agent(hub, "engine-1", "engine", "", "--config", str(bad))
    assert agent.wait() == 2
    assert "must hold an object" in agent.output()
    missing = spawn_agent(hub, "engine-2", "engine", "", "--config", str(tmp_path / "nope"))
    assert missing.wait() == 2
    assert "cannot read config file" in missing.output()
