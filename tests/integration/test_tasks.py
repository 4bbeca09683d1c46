"""Audio tasks end to end: a real hub, a real engine and two real instance drivers."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from processes import AgentProcess, HubProcess, wait_until
from task_calls import TaskCalls, two_driver_spec
from websockets.asyncio.client import connect

SPEC = two_driver_spec(3)


class Studio(TaskCalls):
    """A hub with an engine and two instance drivers, all up."""

    def __init__(self, hub: HubProcess, spawn: Callable[..., AgentProcess]) -> None:
        super().__init__(hub)
        self.spawn = spawn
        self.agents = {
            "engine-1": spawn(hub, "engine-1", "engine"),
            "driver-1": spawn(hub, "driver-1", "driver"),
            "driver-2": spawn(hub, "driver-2", "driver"),
        }
        for name in self.agents:
            hub.wait_state(name, "up")

    def restart_driver(self, name: str, config: dict[str, Any]) -> None:
        """Store ``config`` for a driver and restart it (its insert link is set up at start)."""
        self.call("PUT", f"/configs/{name}", json=config).raise_for_status()
        self.agents[name].stop()
        self.hub.wait_state(name, "down")
        self.agents[name] = self.spawn(self.hub, name, "driver", None)
        self.hub.wait_state(name, "up")

    def fixed_and_dynamic(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """SPEC reserved twice: with its instances on the drivers, and all in the engine."""
        fixed = self.reserve(SPEC)
        dynamic_spec = copy.deepcopy(SPEC)
        for instance in dynamic_spec["instances"].values():
            instance.pop("location", None)
        return fixed, self.reserve(dynamic_spec)


@pytest.fixture
def studio(hub: HubProcess, spawn_agent: Callable[..., AgentProcess]) -> Studio:
    return Studio(hub, spawn_agent)


def listen(hub: HubProcess, task_id: str, seconds: float,
           during: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], list[Any]]:
    """Subscribe to the task's stream for ``seconds``; returns audio headers and text items."""
    from backend.protocol import frames

    async def run() -> tuple[list[dict[str, Any]], list[Any]]:
        audio: list[dict[str, Any]] = []
        texts: list[Any] = []
        url = hub.url.replace("http://", "ws://") + f"/api/v1/tasks/{task_id}/stream"
        async with connect(url, additional_headers=hub.auth) as ws:
            if during is not None:
                await asyncio.to_thread(during)
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                try:
                    item = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                if isinstance(item, bytes):
                    header, payload = frames.unpack(item)
                    header["peak"] = float(np.abs(np.frombuffer(payload, np.float32)).max())
                    audio.append(header)
                else:
                    texts.append(json.loads(item))
        return audio, texts

    return asyncio.run(run())


def test_reserve_play_stop_render_download_release(studio: Studio) -> None:
    task = studio.reserve(SPEC)
    assert task["engine"] == "engine-1"
    assert task["drivers"] == {"driver-1": ["driver-1.comp"], "driver-2": ["driver-2.tape"]}
    tid = task["id"]

    # Play: the stream carries audio blocks and meters that move; then stop.
    audio, texts = listen(studio.hub, tid, 1.5,
                          during=lambda: studio.call("POST", f"/tasks/{tid}/play"))
    assert studio.task(tid)["state"] == "playing"
    assert len(audio) >= 40  # 1.5 s of 1024-frame blocks is ~70
    assert [h["seq"] for h in audio] == list(range(1, len(audio) + 1))
    assert max(h["peak"] for h in audio) > 0.05
    meters = [t for t in texts if t["type"] == "meters"]
    program_s = len(audio) * 1024 / 48000  # what was produced, however loaded the machine
    assert len(meters) >= 20 * program_s - 2  # >= 20 Hz of program
    assert meters[-1]["channels"][0]["peak_dbfs"] > -40
    assert "driver-1.comp" in meters[-1]["reports"]
    r = studio.call("POST", f"/tasks/{tid}/stop")
    assert r.status_code == 200 and r.json()["state"] == "ready"
    # The stop cuts the driver round trips short; the engine's word on that play arrives
    # after the stop and must not turn a stopped play into a failed one.
    time.sleep(0.5)
    assert studio.task(tid)["state"] == "ready"
    assert not [e for e in studio.hub.events()
                if e["event"] == "task.play_failed" and e["data"]["subject"] == tid]

    # Render, twice: the same bytes; the content is the mix (level, length, format).
    first = studio.render(tid)
    assert first == studio.render(tid)
    data, rate = sf.read(io.BytesIO(first))
    info = sf.info(io.BytesIO(first))
    assert rate == 48000 and data.shape == (3 * 48000, 2) and info.subtype == "PCM_24"
    assert -30 < 20 * np.log10(np.abs(data).max()) < 0

    # Release: engine and drivers drop the spec.
    r = studio.call("POST", f"/tasks/{tid}/release")
    assert r.status_code == 200 and r.json()["state"] == "released"

    def dropped() -> set[str]:
        return {e["data"]["data"]["component"] for e in studio.hub.events()
                if e["event"] == "task.dropped" and e["data"]["subject"] == tid}

    wait_until(lambda: dropped() == {"engine-1", "driver-1", "driver-2"}, 10, "drops")


def test_fixed_instances_on_drivers_render_bit_identical_to_dynamic(studio: Studio) -> None:
    fixed, dynamic = studio.fixed_and_dynamic()
    assert dynamic["drivers"] == {}
    a = sf.read(io.BytesIO(studio.render(fixed["id"], "float32")), dtype="float32")[0]
    b = sf.read(io.BytesIO(studio.render(dynamic["id"], "float32")), dtype="float32")[0]
    assert a.shape == b.shape and np.array_equal(a, b)
    engine_log = studio.agents["engine-1"].output()
    for driver in ("driver-1", "driver-2"):  # straight to each driver, not through the hub
        assert f"inserts on {driver} go over its direct link" in engine_log


def test_a_driver_without_a_direct_link_goes_through_the_hub(studio: Studio) -> None:
    studio.restart_driver("driver-2", {"insert_listen": "off"})
    fixed, dynamic = studio.fixed_and_dynamic()
    a = studio.render(fixed["id"], "float32")
    assert a == studio.render(dynamic["id"], "float32")  # byte for byte
    engine_log = studio.agents["engine-1"].output()
    assert "inserts on driver-1 go over its direct link" in engine_log
    assert "inserts on driver-2 go over" not in engine_log  # relayed by the hub


def test_a_sealed_insert_link_renders_bit_identical(studio: Studio) -> None:
    """A link between machines is sealed (insert_seal "on" forces it on loopback): every
    block encrypted and authenticated, and the render the same, byte for byte."""
    studio.restart_driver("driver-2", {"insert_seal": "on"})
    fixed, dynamic = studio.fixed_and_dynamic()
    assert studio.render(fixed["id"], "float32") == studio.render(dynamic["id"], "float32")
    engine_log = studio.agents["engine-1"].output()
    assert re.search(r"inserts on driver-2 go over its direct link \([^)]*, sealed\)",
                     engine_log)
    assert "sealed" in studio.agents["driver-2"].output()


def test_render_cancel_stops_and_deletes_the_partial_file(studio: Studio) -> None:
    long_spec = copy.deepcopy(SPEC)
    for track in long_spec["tracks"]:
        track["source"]["duration_s"] = 600
    tid = studio.reserve(long_spec)["id"]
    rid = studio.call("POST", f"/tasks/{tid}/render", json={}).json()["render_id"]
    wait_until(lambda: studio.call("GET", f"/tasks/{tid}/renders/{rid}").json()["progress"]
               > 0.01, 20, "some progress")
    r = studio.call("POST", f"/tasks/{tid}/renders/{rid}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert studio.task(tid)["state"] == "ready"
    renders = studio.hub.data_dir / "renders"
    wait_until(lambda: not list(renders.rglob("*.part")), 10, "the partial file to go")
    engine_dir = studio.agents["engine-1"].data_dir / "renders"
    wait_until(lambda: not list(engine_dir.glob("*")), 10, "the engine's partial file to go")
    assert studio.call("GET", f"/tasks/{tid}/renders/{rid}/file").status_code == 409
    again = studio.call("POST", f"/tasks/{tid}/renders/{rid}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


def test_bad_specs_and_conflicts_are_clear(studio: Studio, tmp_path: Path) -> None:
    bad = copy.deepcopy(SPEC)
    bad["tracks"][0]["gain_db"] = "loud"
    r = studio.call("POST", "/tasks", json=bad)
    assert r.status_code == 422
    assert any("gain_db" in map(str, d["loc"]) for d in r.json()["errors"])

    unknown = copy.deepcopy(SPEC)
    unknown["instances"]["driver-1.comp"]["location"] = {"driver": "driver-9"}
    r = studio.call("POST", "/tasks", json=unknown)
    assert r.status_code == 422 and "driver-9" in r.json()["detail"]

    missing = copy.deepcopy(SPEC)
    missing["instances"]["driver-1.fuzz"] = missing["instances"].pop("driver-1.comp")
    missing["tracks"][0]["chain"] = ["driver-1.fuzz"]
    r = studio.call("POST", "/tasks", json=missing)
    assert r.status_code == 422 and "has no instance 'driver-1.fuzz'" in r.json()["detail"]

    first = studio.reserve(SPEC)
    r = studio.call("POST", "/tasks", json=SPEC)
    assert r.status_code == 409 and first["id"] in r.json()["detail"]
    later = copy.deepcopy(SPEC)
    later["window"] = {"start": "2026-11-22T12:00:00Z", "end": "2026-11-22T13:00:00Z"}
    studio.reserve(later)  # back to back, no overlap

    nofile = copy.deepcopy(SPEC)
    nofile["tracks"][0]["source"] = {"type": "file", "path": str(tmp_path / "missing.wav")}
    for instance in nofile["instances"].values():
        instance.pop("location", None)
    refused = studio.reserve(nofile, state="failed")
    assert refused["error"].startswith("engine-1 refused the spec")
    assert "missing.wav" in refused["error"]

    assert studio.call("GET", "/tasks/t_000000000000").status_code == 404


def test_every_transport_call_in_a_wrong_state_is_409(studio: Studio) -> None:
    tid = studio.reserve(SPEC)["id"]
    assert studio.call("POST", f"/tasks/{tid}/stop").status_code == 409
    fake = f"/tasks/{tid}/renders/r_000000000000/cancel"
    assert studio.call("POST", fake).status_code == 404
    studio.call("POST", f"/tasks/{tid}/play").raise_for_status()
    for path in ("/play", "/render"):
        r = studio.call("POST", f"/tasks/{tid}{path}")
        assert r.status_code == 409 and "it is playing" in r.json()["detail"]
    studio.call("POST", f"/tasks/{tid}/release").raise_for_status()  # release stops play first
    for method, path in [("POST", "/play"), ("POST", "/stop"), ("POST", "/render"),
                         ("POST", "/release")]:
        r = studio.call(method, f"/tasks/{tid}{path}")
        assert r.status_code == 409 and "released" in r.json()["detail"], (path, r.text)


def test_live_parameter_change_reaches_the_driver(studio: Studio) -> None:
    tid = studio.reserve(SPEC)["id"]
    r = studio.call("PATCH", f"/tasks/{tid}/instances/driver-1.comp", json={"ratio": 10})
    assert r.status_code == 200 and r.json()["params"]["ratio"] == 10

    def driver_has_it() -> bool:
        report = studio.hub.components()["driver-1"]["report"] or {}
        comp = [i for i in report.get("instances", []) if i["id"] == "driver-1.comp"]
        return bool(comp) and comp[0]["params"]["ratio"] == 10

    wait_until(driver_has_it, 10, "the driver to apply the ratio")
    r = studio.call("PATCH", f"/tasks/{tid}/instances/driver-1.comp", json={"ratio": -1})
    assert r.status_code == 422 and "ratio" in r.json()["detail"]
    r = studio.call("PATCH", f"/tasks/{tid}/instances/nothing", json={})
    assert r.status_code == 404


def test_a_driver_killed_during_play_fails_it_then_the_task_recovers(studio: Studio) -> None:
    tid = studio.reserve(SPEC)["id"]
    studio.call("POST", f"/tasks/{tid}/play").raise_for_status()
    time.sleep(0.5)
    studio.agents["driver-1"].send(signal.SIGKILL)
    killed = time.monotonic()
    task = studio.wait(tid, "failed", timeout=5)
    assert time.monotonic() - killed < 2.0  # target: within 1 s of being seen down
    assert "driver-1 went down" in task["play"]["error"]
    assert task["play"]["state"] == "failed"
    # The driver comes back (its saved credentials): the spec is pushed again; ready.
    studio.agents["driver-1"] = studio.spawn(studio.hub, "driver-1", "driver", None)
    studio.wait(tid, "ready", timeout=15)
    studio.call("POST", f"/tasks/{tid}/play").raise_for_status()
    audio, _ = listen(studio.hub, tid, 0.5)
    assert audio and studio.task(tid)["state"] == "playing"


def test_an_engine_killed_during_render_fails_it(studio: Studio) -> None:
    long_spec = copy.deepcopy(SPEC)
    for track in long_spec["tracks"]:
        track["source"]["duration_s"] = 600
    tid = studio.reserve(long_spec)["id"]
    rid = studio.call("POST", f"/tasks/{tid}/render", json={}).json()["render_id"]
    wait_until(lambda: studio.call("GET", f"/tasks/{tid}/renders/{rid}").json()["progress"]
               > 0.0, 20, "some progress")
    studio.agents["engine-1"].send(signal.SIGKILL)
    task = studio.wait(tid, "failed", timeout=5)
    render = task["renders"][0]
    assert render["state"] == "failed" and "engine-1 went down" in render["error"]
    assert not list((studio.hub.data_dir / "renders").rglob("*.part"))
    studio.agents["engine-1"] = studio.spawn(studio.hub, "engine-1", "engine", None)
    studio.wait(tid, "ready", timeout=15)
    # Found by the chaos suite: the killed engine's half-written file stayed in its render
    # dir for good; the engine's next process removes it.
    assert not list((studio.agents["engine-1"].data_dir / "renders").iterdir())


def test_an_engine_named_by_two_tasks_comes_back_after_a_sigkill(studio: Studio) -> None:
    """Found by the chaos suite: the engine came back, the hub pushed the first task's spec
    before the welcome, and the engine dropped that connection and every next one (the
    hub closed them 1011), so both tasks stayed failed for good."""
    fixed, dynamic = studio.fixed_and_dynamic()
    studio.agents["engine-1"].send(signal.SIGKILL)
    studio.agents["engine-1"].wait()
    studio.hub.wait_state("engine-1", "down")
    studio.agents["engine-1"] = studio.spawn(studio.hub, "engine-1", "engine", None)
    studio.hub.wait_state("engine-1", "up", timeout=20)
    for task in (fixed, dynamic):
        studio.wait(task["id"], "ready", timeout=20)
    assert "expected welcome" not in studio.agents["engine-1"].output()


def test_a_spec_naming_a_down_driver_is_refused(studio: Studio) -> None:
    studio.agents["driver-2"].stop()
    studio.hub.wait_state("driver-2", "down")
    r = studio.call("POST", "/tasks", json=SPEC)
    assert r.status_code == 409 and "driver-2 is down" in r.json()["detail"]


def test_tasks_survive_a_hub_restart(studio: Studio) -> None:
    tid = studio.reserve(SPEC)["id"]
    digest = hashlib.sha256(studio.render(tid)).hexdigest()
    studio.hub.stop()
    studio.hub.start()
    task = studio.wait(tid, "ready", timeout=20)  # agents back, spec pushed again
    rid = task["renders"][0]["render_id"]
    kept = studio.call("GET", f"/tasks/{tid}/renders/{rid}/file").content
    assert hashlib.sha256(kept).hexdigest() == digest


def test_file_sources_from_generated_media(studio: Studio, tmp_path: Path) -> None:
    from backend.audio.testmedia import write_test_media

    media = tmp_path / "media"
    write_test_media(media)
    r = studio.call("PUT", "/configs/engine-1", json={"media_dir": str(media)})
    assert r.status_code == 200 and r.json()["pushed"]
    spec = json.loads((Path(__file__).parents[2] / "resources/specs/files.json").read_text())
    tid = studio.reserve(spec)["id"]
    data, rate = sf.read(io.BytesIO(studio.render(tid)))
    assert rate == 48000 and data.shape == (8 * 48000, 2)  # the 44.1 kHz bass resampled
    assert 20 * np.log10(np.abs(data).max()) > -20


def test_the_task_command_line(studio: Studio, tmp_path: Path) -> None:
    import subprocess
    import sys

    from processes import QTBLOCK, ROOT, child_env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, QTBLOCK, "-m", "app.main", "--data-dir", str(studio.hub.data_dir),
             "task", *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
            env=child_env())

    reserved = cli("reserve", str(ROOT / "resources/specs/demo.json"))
    assert reserved.returncode == 0, reserved.stderr
    tid = reserved.stdout.strip()
    assert studio.task(tid)["state"] == "ready"
    out = tmp_path / "demo.wav"
    rendered = cli("render", tid, "-o", str(out))
    assert rendered.returncode == 0, rendered.stderr
    assert "100.0%" in rendered.stderr and sf.info(str(out)).duration == 8.0
    played = cli("play", tid, "--seconds", "1")
    assert played.returncode == 0, played.stderr
    assert " L #" in played.stderr  # live meters were drawn
    assert studio.task(tid)["state"] == "ready"  # stopped after the time was up
    assert cli("release", tid).returncode == 0
    again = cli("play", tid)
    assert again.returncode == 1 and "released" in again.stderr
    bad = cli("reserve", str(tmp_path / "nope.json"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_a_render_split_across_processes_is_bit_identical(studio: Studio) -> None:
    spec = copy.deepcopy(SPEC)
    for i in range(4):  # tracks a second process can take; the fixed ones stay
        spec["tracks"].append({"id": f"x{i}", "chain": [f"eqx{i}"], "source": {
            "type": "tone", "freq_hz": 200 + 100 * i, "level_dbfs": -18, "duration_s": 3}})
        spec["instances"][f"eqx{i}"] = {"model": "eq", "params": {"bands": [
            {"type": "peaking", "freq_hz": 250 + 100 * i, "gain_db": 5}]}}
    tid = studio.reserve(spec)["id"]
    engine = studio.agents["engine-1"]
    studio.configure("engine-1", engine.output, render_processes=1)
    single = studio.render(tid, "float32")
    studio.configure("engine-1", engine.output, render_processes=2)
    assert studio.render(tid, "float32") == single
    output = studio.agents["engine-1"].output()
    assert "rendered by 1 other process" in output and "track worker" not in output
