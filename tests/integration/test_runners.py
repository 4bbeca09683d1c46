"""Runners end to end: register, run from saved settings, inventory, heartbeat, logs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from processes import QTBLOCK, ROOT, HubProcess, child_env, wait_until
from runner_farm import FAST, controlroom


def run_runner(data_dir: Path) -> subprocess.Popen[bytes]:
    with open(data_dir / "run.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, QTBLOCK, "-m", "app.main", "runner", "run", "--data-dir",
             str(data_dir)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env())


def inventory_events(hub: HubProcess) -> list[dict[str, object]]:
    return [e["data"]["data"] for e in hub.events(idle=0.4) if e["event"] == "runner.inventory"]


def runner_view(hub: HubProcess, name: str) -> dict[str, object]:
    r = hub.client.get(f"{hub.url}/api/v1/runners/{name}")
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_register_then_run_from_saved_settings_posts_inventory_then_only_changes(
        hub: HubProcess, tmp_path: Path) -> None:
    data = tmp_path / "runner"
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST))
    done = controlroom("runner", "register", "--hub", hub.url, "--token", hub.enroll("runner"),
                       "--name", "r1", "--labels", "linux,fast", "--data-dir", str(data),
                       "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "registered runner r1" in done.stdout
    assert stat.S_IMODE(os.stat(data / "credentials.json").st_mode) == 0o600

    proc = run_runner(data)
    try:
        wait_until(lambda: runner_view(hub, "r1")["phase"] == "ready", 20, "ready")
        view = runner_view(hub, "r1")
        assert view["labels"] == ["linux", "fast"] and view["state"] in ("half_open", "up")
        hardware = view["hardware"]
        assert isinstance(hardware, dict)
        assert hardware["cpu"]["threads"] >= 1 and hardware["memory"]["total_mb"] > 0
        assert hardware["gpus"] == [] and hardware["os"]["system"] == "Linux"
        first = runner_view(hub, "r1")["last_heartbeat"]
        wait_until(lambda: runner_view(hub, "r1")["last_heartbeat"] != first, 5,
                   "a heartbeat")
        assert isinstance(runner_view(hub, "r1")["free"], dict)
        assert [e["full"] for e in inventory_events(hub)] == [True]
        proc.terminate()
        assert proc.wait(15) == 0
        assert runner_view(hub, "r1")["phase"] == "shutdown"

        proc = run_runner(data)  # unchanged hardware: nothing new is posted
        wait_until(lambda: runner_view(hub, "r1")["phase"] == "ready", 20, "ready again")
        assert [e["full"] for e in inventory_events(hub)] == [True]
        proc.terminate()
        assert proc.wait(15) == 0

        cache = json.loads((data / "inventory.json").read_text())
        cache["memory"]["total_mb"] = 1  # as if memory had been added since
        (data / "inventory.json").write_text(json.dumps(cache))
        proc = run_runner(data)
        wait_until(lambda: len(inventory_events(hub)) == 2, 20, "the change")
        change = inventory_events(hub)[-1]
        assert change == {"full": False, "changed": ["memory"], "removed": []}
        assert runner_view(hub, "r1")["hardware"] == hardware
    finally:
        proc.terminate()
        proc.wait(15)


def test_registration_errors_say_exactly_why(hub: HubProcess, tmp_path: Path) -> None:
    token = hub.enroll("runner")
    ok = controlroom("runner", "register", "--hub", hub.url, "--token", token, "--name", "a",
                     "--data-dir", str(tmp_path / "a"))
    assert ok.returncode == 0, ok.stderr
    cases = {
        "enrollment token already used": (hub.url, token),
        "enrollment token unknown": (hub.url, "cre_nope"),
        "enrollment token expired": (hub.url, hub.enroll("runner", ttl_s=0.01)),
        "is for a engine, not a runner": (hub.url, hub.enroll("engine")),
        "unreachable": ("http://127.0.0.1:9", "cre_x"),
    }
    time.sleep(0.05)
    for i, (why, (url, tok)) in enumerate(cases.items()):
        result = controlroom("runner", "register", "--hub", url, "--token", tok, "--name",
                             f"b{i}", "--data-dir", str(tmp_path / f"b{i}"))
        assert result.returncode == 2, (why, result.stderr)
        assert why in result.stderr, (why, result.stderr)
        assert not (tmp_path / f"b{i}" / "runner.json").exists()
    missing = controlroom("runner", "run", "--data-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "runner register" in missing.stderr


def test_runner_logs_are_fetched_from_the_runner(hub: HubProcess, tmp_path: Path) -> None:
    data = tmp_path / "runner"
    done = controlroom("runner", "register", "--hub", hub.url, "--token", hub.enroll("runner"),
                       "--name", "r1", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    proc = run_runner(data)
    try:
        wait_until(lambda: runner_view(hub, "r1")["phase"] == "ready", 20, "ready")
        r = hub.client.get(f"{hub.url}/api/v1/runners/r1/logs", params={"lines": 5})
        assert r.status_code == 200
        lines = r.text.splitlines()
        assert 1 <= len(lines) <= 5 and all(json.loads(line)["ts"] for line in lines)
        assert hub.client.get(f"{hub.url}/api/v1/runners/nobody/logs").status_code == 404
        proc.terminate()
        proc.wait(15)
        r = hub.client.get(f"{hub.url}/api/v1/runners/r1/logs")
        assert r.status_code == 503 and "not connected" in r.text
        listed = hub.client.get(f"{hub.url}/api/v1/runners").json()
        assert [x["id"] for x in listed] == ["r1"]
        assert hub.components()["r1"]["kind"] == "runner"
    finally:
        proc.terminate()
        proc.wait(15)
