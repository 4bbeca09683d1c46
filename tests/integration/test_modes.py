"""The program's modes as a user starts them: headless, no display, cloud + upstream, logs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from processes import QTBLOCK, ROOT, AgentProcess, HubProcess, child_env, wait_until

from backend import __version__


def test_headless_serves_health_openapi_and_keeps_its_token_private(hub: HubProcess) -> None:
    assert hub.url.startswith("http://127.0.0.1:")  # loopback by default
    health = hub.client.get(f"{hub.url}/api/v1/health", headers={"Authorization": ""}).json()
    assert health == {"status": "ok", "version": __version__}  # liveness and version only
    assert hub.client.get(f"{hub.url}/api/v1/hub").json()["role"] == "studio"
    openapi = hub.client.get(f"{hub.url}/openapi.json").json()
    assert "/api/v1/components" in openapi["paths"] and "/node/v1/flows" in openapi["paths"]
    token_file = hub.data_dir / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    flows = hub.client.get(f"{hub.url}/node/v1/flows").json()
    assert {f["name"] for f in flows} >= {"echo", "count"}
    assert all("properties" in f["inputs_schema"] for f in flows)


def test_structured_logs_go_to_stderr_and_a_file(hub: HubProcess) -> None:
    hub.enroll()
    assert hub.stop() == 0
    lines = (hub.data_dir / "logs" / "controlroom.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert any("hub listening on" in e["msg"] for e in entries)
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    assert "hub listening on" in hub.stderr()
    assert "Traceback" not in hub.stderr()


def test_without_a_display_the_console_says_so_and_runs_headless(tmp_path: Path) -> None:
    env = child_env()
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    data = tmp_path / "hub"
    proc = subprocess.Popen(
        [sys.executable, QTBLOCK, "-m", "app.main", "--data-dir", str(data), "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=ROOT,
    )
    try:
        wait_until(lambda: (data / "hub.url").exists() or proc.poll() is not None, 20, "hub.url")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "no display found" in err.decode()


def test_a_port_in_use_is_a_clear_error(hub: HubProcess, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, QTBLOCK, "-m", "app.main", "--headless", "--data-dir",
         str(tmp_path / "other"), "--port", str(hub.port)],
        capture_output=True, text=True, timeout=30, env=child_env(), cwd=ROOT,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{hub.port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_orchestrated_boot_cloud_hub_and_agent(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess]
) -> None:
    cloud = start_hub("--role", "cloud", name="cloud")
    assert cloud.client.get(f"{cloud.url}/api/v1/hub").json()["role"] == "cloud"
    assert cloud.client.get(f"{cloud.url}/node/v1/flows").status_code == 404  # hub only
    studio = start_hub("--upstream", cloud.url.replace("http://", "ws://"),
                       "--token", cloud.enroll("hub"), "--name", "studio-a", name="studio")
    cloud.wait_state("studio-a", "up")
    spawn_agent(studio, "engine-1", "engine")
    studio.wait_state("engine-1", "up")

    def reported() -> dict[str, object] | None:
        hub = cloud.components()["studio-a"]
        listed = {c["id"]: c["state"] for c in (hub["report"] or {}).get("components", [])}
        return hub if listed.get("engine-1") == "up" else None

    hub_entry = wait_until(reported, 10, "the studio hub to report its engine")
    assert hub_entry["kind"] == "hub"
    assert hub_entry["config"]["url"] == studio.url  # its static config, merged
    # A config stored on the cloud reaches the studio hub live.
    cloud.client.put(f"{cloud.url}/api/v1/configs/studio-a", json={"region": "eu"},
                     headers=cloud.auth).raise_for_status()
    assert cloud.components()["studio-a"]["config"]["region"] == "eu"

    # The studio hub restarts: it comes back on the cloud with saved credentials, once.
    studio.stop()
    cloud.wait_state("studio-a", "down")
    studio.start()
    cloud.wait_state("studio-a", "up", timeout=20)
    assert list(cloud.components()) == ["studio-a"]


def test_kept_alive_requests_are_not_delayed_by_nagle(hub: HubProcess) -> None:
    """Without TCP_NODELAY every kept-alive response waited ~40 ms for a delayed ACK."""
    import time

    url = f"{hub.url}/api/v1/health"
    hub.client.get(url)  # open the connection
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        hub.client.get(url).raise_for_status()
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[5] < 0.02, timings  # median well under the 40 ms stall
