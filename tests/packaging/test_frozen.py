"""Every mode of the program, frozen: the bundle's executables, and every process they
start, are what runs here; no Python from the tree is involved but the test's own checks.

What a bundle gets wrong only shows when it runs: a hidden import PyInstaller missed (a
build stays green with a buried warning), a library left out, a process started as
``python -m``. So each path that starts a process is walked with the frozen program: the
supervisor's agents, the engine's render workers (forkserver), the runner's shim and its
render job, the node's flow workers, and the windowed executable itself.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from node_processes import Runs, kill_workers
from processes import ROOT, AgentProcess, HubProcess, wait_until
from runner_farm import Farm
from task_calls import TaskCalls

from backend import __version__

DEMO: dict[str, Any] = json.loads((ROOT / "resources" / "specs" / "demo.json").read_text())


def dynamic(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every instance dynamic (run by the engine itself, as on a runner)."""
    out = copy.deepcopy(spec)
    for instance in out["instances"].values():
        instance.pop("location", None)
    return out


def with_splittable_tracks(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec plus tracks a second render process can take (their chains are dynamic)."""
    out = copy.deepcopy(spec)
    for i in range(4):
        out["tracks"].append({"id": f"x{i}", "chain": [f"eqx{i}"], "source": {
            "type": "tone", "freq_hz": 200 + 100 * i, "level_dbfs": -18, "duration_s": 8}})
        out["instances"][f"eqx{i}"] = {"model": "eq", "params": {"bands": [
            {"type": "peaking", "freq_hz": 250 + 100 * i, "gain_db": 5}]}}
    return out


def reference(spec: dict[str, Any], path: Path, fmt: str = "wav24") -> bytes:
    """The same render from the source tree, in this process."""
    from backend.audio import Graph, parse_task_spec, render

    render(Graph(parse_task_spec(dynamic(spec))), path, fmt)  # type: ignore[arg-type]
    return path.read_bytes()


def is_frozen_program(pid: int, bundle: Path) -> bool:
    return Path(psutil.Process(pid).exe()).resolve() == (bundle / "controlroom").resolve()


def loads_qt(pid: int) -> bool:
    """Whether Qt is mapped into the process (headless modes never import it)."""
    return any("libQt6Core" in m.path for m in psutil.Process(pid).memory_maps())


def test_headless_hub_and_agents_render_bit_identical_to_the_sources(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], bundle: Path,
        tmp_path: Path) -> None:
    health = httpx.get(f"{hub.url}/api/v1/health").json()
    assert health["status"] == "ok" and health["version"] == __version__
    assert is_frozen_program(hub.proc.pid, bundle)  # type: ignore[union-attr]
    agents = {name: spawn_agent(hub, name, kind) for name, kind in
              (("engine-1", "engine"), ("driver-1", "driver"), ("driver-2", "driver"))}
    for name, agent in agents.items():
        hub.wait_state(name, "up", timeout=30)
        assert is_frozen_program(agent.proc.pid, bundle)
    assert not any(loads_qt(p.pid) for p in (hub.proc, *(a.proc for a in agents.values())))
    tasks = TaskCalls(hub)

    tid = tasks.reserve(DEMO)["id"]
    assert tasks.render(tid, timeout=60) == reference(DEMO, tmp_path / "demo.wav")
    assert tasks.call("POST", f"/tasks/{tid}/release").status_code == 200  # release the drivers

    # The engine's render workers come from a forkserver: frozen, that is the executable
    # again, started by PyInstaller's freeze_support with multiprocessing's arguments.
    split = with_splittable_tracks(DEMO)
    tid = tasks.reserve(split)["id"]
    tasks.configure("engine-1", agents["engine-1"].output, render_processes=2)
    assert tasks.render(tid, timeout=60) == reference(split, tmp_path / "split.wav")
    output = agents["engine-1"].output()
    assert "rendered by 1 other process" in output and "Traceback" not in output


def test_runner_runs_a_command_and_a_render_job_and_survives_a_sigkill(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], bundle: Path,
        tmp_path: Path) -> None:
    farm = Farm(hub, spawn_agent, tmp_path)
    runner = farm.runner("r1")
    farm.ready("r1", timeout=30)
    assert is_frozen_program(runner.proc.pid, bundle)

    marker = tmp_path / "ran.txt"
    steps = " ".join(f"0.{i}" for i in range(1, 10))
    job = farm.submit(["/bin/sh", "-c", f"echo x >> {marker}; for p in {steps} 1.0; "
                       "do sleep 0.25; echo progress $p; done"])
    farm.wait(job, "running", check=lambda j: j["progress"] > 0)
    shims = [p for p in psutil.process_iter(["cmdline"])  # a shim has its own session
             if "backend.runner.shim" in (p.info["cmdline"] or [])
             and str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert shims and all(is_frozen_program(p.pid, bundle) for p in shims)
    runner.send(signal.SIGKILL)
    runner.wait()
    time.sleep(1.0)  # the job goes on while its runner is dead
    farm.runner("r1", token=None)
    done = farm.wait(job, "succeeded", timeout=30)
    assert done["progress"] == 1.0 and done["exit_code"] == 0
    assert marker.read_text() == "x\n"  # it ran exactly once

    render = farm.submit(kind="render", payload={"spec": dynamic(DEMO), "name": "demo.wav"})
    done = farm.wait(render, "succeeded", timeout=60)
    assert done["artifacts"] == ["demo.wav"]
    artifact = farm.call("GET", f"/jobs/{render}/artifacts/demo.wav").content
    assert artifact == reference(DEMO, tmp_path / "demo.wav")


def test_a_flow_with_a_lock_runs_in_a_frozen_worker_and_is_released(
        hub: HubProcess, bundle: Path) -> None:
    runs = Runs(hub.client, f"{hub.url}/api/v1/nodes/local", hub.auth)
    try:
        fid = runs.start("hello")
        lock = runs.lock(fid)
        workers = [p for p in psutil.Process(hub.proc.pid).children()  # type: ignore[union-attr]
                   if "backend.node.worker" in p.cmdline()]
        assert workers and all(is_frozen_program(p.pid, bundle) for p in workers)
        assert runs.submit(fid, lock["lid"], {"name": "Frozen"}).status_code == 200
        assert runs.wait(fid, "done")["result"] == "Hello, Frozen!"
    finally:
        kill_workers(hub.data_dir / "node")


def test_the_windowed_executable_starts_a_local_studio_and_quits_cleanly(
        bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "desktop"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    with open(tmp_path / "windowed.out", "wb") as out:
        app = subprocess.Popen([str(bundle / "ControlRoom"), "--local-studio", "--port", "0",
                                "--data-dir", str(data)], stdout=out, stderr=subprocess.STDOUT,
                               env=env)
    spawned: list[psutil.Process] = []
    try:
        wait_until(lambda: (data / "hub.url").exists() or app.poll() is not None, 60,
                   "the windowed app's hub")
        assert app.poll() is None, (tmp_path / "windowed.out").read_text()
        url = (data / "hub.url").read_text().strip()
        token = (data / "admin.token").read_text().strip()

        def engine_up() -> bool:
            r = httpx.get(f"{url}/api/v1/components",
                          headers={"Authorization": f"Bearer {token}"})
            return any(c["id"] == "engine-1" and c["state"] == "up" for c in r.json())

        wait_until(engine_up, 60, "the local studio's engine to be up", step=0.2)
        spawned = psutil.Process(app.pid).children()
        engines = [p for p in spawned if "engine" in p.cmdline()]
        assert engines and all(is_frozen_program(p.pid, bundle) for p in engines)
        app.send_signal(signal.SIGTERM)
        assert app.wait(60) == 0
    finally:
        if app.poll() is None:
            app.kill()
        for child in spawned:
            if child.is_running():
                child.kill()
    log = (data / "logs" / "controlroom.log").read_text()
    assert "console window open" in log
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]


def test_a_frozen_process_refuses_modules_that_are_not_its_own(bundle: Path) -> None:
    result = subprocess.run([str(bundle / "controlroom"), "-m", "http.server"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "-m takes one of" in result.stderr


def test_the_bundle_is_stamped_with_the_projects_version(bundle: Path) -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    result = subprocess.run([str(bundle / "controlroom"), "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"controlroom {version}"
    assert __version__ == version  # and the sources say the same
