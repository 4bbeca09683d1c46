"""The approve-render example flow end to end: reserve, render, measure, lock, re-render.

It needs the hub's audio tasks (``/api/v1/tasks``, issue 3); until the hub serves them
the test skips itself, and it starts running the day the route appears.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from node_processes import Runs, kill_workers
from processes import AgentProcess, HubProcess


def spec() -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {
        "sample_rate": 48000,
        "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 1000.0,
                                              "level_dbfs": -20.0, "duration_s": 3.0}}],
        "window": {"start": now.isoformat(), "end": (now + dt.timedelta(hours=1)).isoformat()},
    }


def lufs_in(prompt: str) -> float:
    found = re.search(r"reads (-?\d+\.\d) LUFS", prompt)
    assert found, prompt
    return float(found.group(1))


def test_approve_render_measures_asks_re_renders_and_returns_the_file(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    try:
        paths = hub.client.get(f"{hub.url}/openapi.json").json()["paths"]
        if "/api/v1/tasks" not in paths:
            pytest.skip("the hub does not serve audio tasks yet (issue 3)")
        spawn_agent(hub, "engine-1", "engine")
        hub.wait_state("engine-1", "up")
        runs = Runs(hub.client, f"{hub.url}/node/v1", hub.auth)
        fid = runs.start("approve-render", {"spec": spec()})
        first = runs.lock(fid, timeout=60)
        level = lufs_in(first["prompt"])
        assert -40 < level < -10
        r = runs.submit(fid, first["lid"], {"approve": False, "gain_db": -3})
        assert r.status_code == 200, r.text

        def second_lock() -> dict[str, object] | None:
            locks = runs.state(fid)["locks"]
            return locks[0] if locks and locks[0]["lid"] != first["lid"] else None

        from processes import wait_until

        second = wait_until(second_lock, 60, "the second lock")
        assert lufs_in(str(second["prompt"])) == pytest.approx(level - 3, abs=0.2)
        refused = runs.submit(fid, str(second["lid"]), {"approve": False})
        assert refused.status_code == 422 and "gain_db" in refused.json()["reason"]
        assert runs.submit(fid, str(second["lid"]), {"approve": True}).status_code == 200
        result = runs.wait(fid, "done", timeout=60)["result"]
        assert result["rounds"] == 2 and result["master_gain_db"] == -3
        assert result["lufs"] == pytest.approx(level - 3, abs=0.2)
        download = hub.client.get(result["url"])
        assert download.status_code == 200 and download.content[:4] == b"RIFF"
    finally:
        kill_workers(hub.data_dir / "node")
