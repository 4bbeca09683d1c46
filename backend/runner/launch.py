"""Turning an accepted offer into the shim's ``launch.json`` and starting the shim.

``command`` payloads run their ``argv`` directly (no shell unless ``shell`` is true);
``render`` payloads run :mod:`backend.runner.render_job`. Before starting, the job's
needs are checked against what the machine has *now* (seed 001: a job that cannot get
its memory crashes into the failed route with the reason, instead of starting).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from backend import program
from backend.runner.journal import write_atomic

MiB = 1024 * 1024
SHIM = Path(__file__).with_name("shim.py")


def argv_for(offer: dict[str, Any], job_dir: Path) -> tuple[list[str], str | None, dict[str, str]]:
    payload = offer["payload"]
    if offer["kind"] == "render":
        return program.command("backend.runner.render_job", str(job_dir)), None, {}
    argv = [str(a) for a in payload["argv"]]
    if payload.get("shell"):
        argv = ["/bin/sh", "-c", *argv]
    env = {str(k): str(v) for k, v in (payload.get("env") or {}).items()}
    return argv, payload.get("cwd"), env


def unmet_at_start(needs: dict[str, Any], work_dir: Path) -> str | None:
    """What the machine lacks right now for ``needs``, or ``None``."""
    memory = float(needs.get("memory_mb") or 0)
    available = psutil.virtual_memory().available / MiB
    if memory > available:
        return f"needs {memory:g} MB memory at start; {available:.0f} MB available"
    disk = float(needs.get("disk_mb") or 0)
    free = psutil.disk_usage(str(work_dir)).free / MiB
    if disk > free:
        return f"needs {disk:g} MB disk at start; {free:.0f} MB free"
    return None


class Shim:
    """A job's shim: started by this runner (``popen``) or found from an earlier life."""

    def __init__(self, process: psutil.Process, popen: subprocess.Popen[bytes] | None) -> None:
        self.process = process
        self.popen = popen

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None  # also reaps it
        try:
            return bool(self.process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False


def shim_command(job_dir: Path) -> list[str]:
    """The shim as a script with ``python -S`` (no site: it starts in milliseconds), or
    frozen, as the bundle's console executable (which holds no loose ``shim.py``)."""
    if program.frozen():
        return program.command("backend.runner.shim", str(job_dir))
    return [sys.executable, "-S", str(SHIM), str(job_dir)]


def start_shim(offer: dict[str, Any], job_dir: Path) -> Shim:
    """Write ``launch.json`` and start the shim in its own session."""
    argv, cwd, env = argv_for(offer, job_dir)
    write_atomic(job_dir / "launch.json", {"argv": argv, "cwd": cwd, "env": env})
    with open(job_dir / "shim.err", "ab") as err:
        popen = subprocess.Popen(
            shim_command(job_dir),
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, close_fds=True,
        )
    process = psutil.Process(popen.pid)
    write_atomic(job_dir / "shim.json", {"pid": popen.pid,
                                         "create_time": process.create_time()})
    return Shim(process, popen)


def adopt_shim(job_dir: Path) -> Shim | None:
    """The shim an earlier runner life started for ``job_dir`` but did not live to record.

    :func:`start_shim` writes ``shim.json`` only once the shim runs; a runner killed in
    between left a shim (in its own session, running the job) that no file names. Starting
    another would run the job twice, so a restarted runner looks for it first, by its
    command line (which ends with the job's dir), and records it.
    """
    if not (job_dir / "launch.json").exists():
        return None  # the earlier life stopped before it could start one
    wanted = str(job_dir)
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if len(cmdline) >= 2 and cmdline[-1] == wanted and (
                cmdline[-2].endswith("shim.py") or cmdline[-2] == "backend.runner.shim"):
            shim = Shim(process, None)
            if not shim.alive():
                continue
            try:
                created = process.create_time()
            except psutil.Error:
                continue
            write_atomic(job_dir / "shim.json", {"pid": process.pid, "create_time": created})
            return shim
    return None


def find_shim(record: dict[str, Any] | None) -> Shim | None:
    """The shim of an earlier runner life, if it still runs and is the same process."""
    if not record:
        return None
    try:
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 0.01:
            return None  # the pid was reused
    except (psutil.Error, KeyError, ValueError):
        return None
    shim = Shim(process, None)
    return shim if shim.alive() else None
