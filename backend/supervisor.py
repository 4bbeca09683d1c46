"""The console's supervisor of agents on this machine: spawn, watch, restart, stop, keep.

The desktop console can start an audio engine, instance drivers, runners and a node as
child processes of the same program (``python -m app.main agent KIND``); it lives in
``backend`` because it needs no Qt, and both the desktop app and the console's views use
it. Each one gets a fresh one-time enrollment token on its first start (asked of the hub
through the ``enroll`` callable) and its own data dir, where it keeps the credentials it earns, so a
restart needs no token. An agent spawned with a ``config`` (a driver's chosen instances,
say) gets it as ``<data-dir>/spawn-config.json`` passed with ``--config``; the file stays,
so a restart starts the agent with the same config. Its output goes to
``<data-dir>/agent.log`` rather than a pipe: an agent the operator chooses to keep running
when the console exits must not lose its stdout with us. The supervisor follows that
file and reports every line.

Qt-free asyncio; views learn what happens through the listener callbacks. Children are
``subprocess.Popen`` objects started in a worker thread and polled, not asyncio
subprocesses: asyncio's subprocess transport kills its child when it is closed, which
would take a kept agent down with the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from backend import program
from backend.client import TOKEN_ENV

log = logging.getLogger(__name__)

__all__ = ["CONFIG_FILE", "KINDS", "AgentProcess", "AgentState", "Enroll", "Supervisor"]

#: Agent kinds the console can spawn, in the order the operator usually needs them.
KINDS = ("engine", "driver", "runner", "node")
#: The file in an agent's data dir that holds the config it was spawned with.
CONFIG_FILE = "spawn-config.json"
#: Lines of output kept per agent (the rest is in its agent.log).
KEPT_LINES = 2000
#: How often the log file is read for new lines.
POLL_S = 0.2
#: How long a stopped agent gets to sign off before it is killed.
STOP_GRACE_S = 5.0

Enroll = Callable[[str], Awaitable[str]]


class AgentState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"
    KEPT = "left running"


@dataclass
class AgentProcess:
    """One spawned agent: what it is, where it keeps things, and how it is doing."""

    kind: str
    name: str
    data_dir: Path
    args: list[str]
    state: AgentState = AgentState.STARTING
    pid: int | None = None
    exit_code: int | None = None
    started_at: float = 0.0
    restarts: int = 0
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_LINES))
    process: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    #: The static config it was spawned with (also in its data dir), None for defaults.
    config: dict[str, Any] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "agent.log"

    @property
    def alive(self) -> bool:
        return self.state in (AgentState.STARTING, AgentState.RUNNING, AgentState.STOPPING)

    def describe_exit(self) -> str:
        code = self.exit_code
        if code is None:
            return ""
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


#: ``listener(kind_of_change, agent, line)``: "state" (line empty) or "output".
Listener = Callable[[str, AgentProcess, str], None]


class Supervisor:
    """Spawns agents as child processes of this program and keeps an eye on them."""

    def __init__(
        self,
        hub_url: str,
        root: Path,
        enroll: Enroll,
        *,
        log_level: str = "info",
        registered: Callable[[], Iterable[str]] | None = None,
        pin: str = "",
    ) -> None:
        self.hub_url = hub_url
        #: The hub certificate's fingerprint each agent pins at its first start.
        self.pin = pin
        self.root = root
        self._enroll = enroll
        #: The component ids the hub knows now: a new agent's name must not take one that
        #: another machine's agent holds (on a studio's shared hub, ``engine-1`` usually is).
        self._registered = registered
        self._log_level = log_level
        self.agents: dict[str, AgentProcess] = {}
        self._listeners: list[Listener] = []
        self._watchers: set[asyncio.Task[None]] = set()

    # -- observing --------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _notify(self, change: str, agent: AgentProcess, line: str = "") -> None:
        for listener in list(self._listeners):
            try:
                listener(change, agent, line)
            except Exception:
                log.exception("an agent listener failed")

    def running(self) -> list[AgentProcess]:
        return [a for a in self.agents.values() if a.alive]

    def next_name(self, kind: str) -> str:
        """``engine-1``, ``driver-2``, ...: the first free name of that kind."""
        return self.next_names(kind, 1)[0]

    def next_names(self, kind: str, count: int) -> list[str]:
        """The first ``count`` free names of a kind, for a dialog that names them up front."""
        taken = set(self._registered()) if self._registered is not None else set()
        names: list[str] = []
        n = 1
        while len(names) < count:
            name = f"{kind}-{n}"
            # A name the hub knows is free only if it is one of ours from an earlier run
            # (its credentials are in our data dir): it then comes back as itself.
            ours = (self.root / name / "credentials.json").exists()
            if name not in self.agents and (name not in taken or ours):
                names.append(name)
            n += 1
        return names

    # -- life of one agent ------------------------------------------------------------

    async def spawn(self, kind: str, name: str | None = None,
                    extra_args: list[str] | None = None,
                    config: dict[str, Any] | None = None) -> AgentProcess:
        """Enroll (first start only) and start ``agent KIND``; returns once it has a PID.

        ``config`` is the agent's static config (laid over its kind's defaults, see
        ``backend/agents/roles.py``), written to its data dir and passed with
        ``--config``; restarts reuse that file.
        """
        if kind not in KINDS:
            raise ValueError(f"cannot spawn a {kind!r}; choose one of {', '.join(KINDS)}")
        name = name or self.next_name(kind)
        existing = self.agents.get(name)
        if existing is not None and existing.alive:
            raise ValueError(f"{name} is already running (PID {existing.pid})")
        args = list(extra_args or [])
        if kind == "node" and "--port" not in args:
            args += ["--port", "0"]  # never collide with another node on 8751
        if config is not None and "--config" in args:
            raise ValueError("give the config either as a dict or as --config, not both")
        agent = AgentProcess(kind, name, self.root / name, args, config=config)
        if config is not None:
            path = agent.data_dir / CONFIG_FILE
            await asyncio.to_thread(_write_config, path, config)
            agent.args += ["--config", str(path)]
        if existing is not None:
            agent.restarts = existing.restarts
            agent.lines = existing.lines
        self.agents[name] = agent
        await self._start(agent)
        return agent

    async def restart(self, name: str) -> AgentProcess:
        """Start a stopped or crashed agent again with the same name and data dir."""
        agent = self.agents[name]
        if agent.alive:
            await self.stop(name)
        agent.restarts += 1
        agent.state, agent.exit_code, agent.stopping = AgentState.STARTING, None, False
        self._note(agent, f"— restarting {name} —")
        await self._start(agent)
        return agent

    async def _start(self, agent: AgentProcess) -> None:
        agent.data_dir.mkdir(parents=True, exist_ok=True)
        command = program.command(
            "app.main", "agent", agent.kind, "--hub", self.hub_url, "--name", agent.name,
            "--data-dir", str(agent.data_dir), "--log-level", self._log_level, *agent.args)
        # The one-time token goes in the environment, never on the command line: any
        # local user can read a process's arguments, only its owner its environment.
        env = {**os.environ}
        env.pop(TOKEN_ENV, None)  # never hand down a token of our own
        if not (agent.data_dir / "credentials.json").exists():
            env[TOKEN_ENV] = await self._enroll(agent.kind)
            if self.pin:
                command += ["--pin", self.pin]
        offset = agent.log_path.stat().st_size if agent.log_path.exists() else 0
        out = agent.log_path.open("ab")
        try:
            process = await asyncio.to_thread(
                subprocess.Popen, command, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=program.root(), env=env,
                start_new_session=True,  # Ctrl+C in our terminal does not reach kept agents
            )
        except BaseException:
            agent.state = AgentState.CRASHED
            self._notify("state", agent)
            raise
        finally:
            out.close()
        agent.process, agent.pid = process, process.pid
        agent.started_at = time.time()
        agent.state = AgentState.RUNNING
        log.info("spawned %s %s (PID %s)", agent.kind, agent.name, agent.pid)
        self._note(agent, f"— {agent.kind} {agent.name} started, PID {agent.pid} —")
        self._notify("state", agent)
        watcher = asyncio.get_running_loop().create_task(
            self._watch(agent, process, offset), name=f"watch-{agent.name}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, agent: AgentProcess, process: subprocess.Popen[bytes],
                     offset: int) -> None:
        """Follow the agent's log until it exits, then say how it ended."""
        with agent.log_path.open("rb") as log_file:
            log_file.seek(offset)
            pending = b""
            while True:
                done = process.poll() is not None  # also reaps it
                chunk = log_file.read()  # a local, small, append-only file
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        self._note(agent, raw.decode(errors="replace").rstrip("\r"))
                if done:
                    if pending:
                        self._note(agent, pending.decode(errors="replace"))
                    break
                await asyncio.sleep(POLL_S)
        if agent.process is not process:
            return  # a newer start owns the agent now
        agent.exit_code = process.returncode
        agent.state = AgentState.STOPPED if agent.stopping else AgentState.CRASHED
        self._note(agent, f"— {agent.name} {agent.state.value}: {agent.describe_exit()} —")
        log.log(logging.INFO if agent.stopping else logging.WARNING, "%s %s (%s)",
                agent.name, agent.state.value, agent.describe_exit())
        self._notify("state", agent)

    def _note(self, agent: AgentProcess, line: str) -> None:
        agent.lines.append(line)
        self._notify("output", agent, line)

    async def stop(self, name: str, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (the agent signs off), then SIGKILL after ``grace_s``."""
        agent = self.agents[name]
        process = agent.process
        if process is None or process.poll() is not None or not agent.alive:
            return
        agent.stopping = True
        agent.state = AgentState.STOPPING
        self._notify("state", agent)
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        deadline = time.monotonic() + grace_s
        while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            while process.poll() is None:  # noqa: ASYNC110 (a Popen is polled)
                await asyncio.sleep(0.02)
        # Let the watcher read the last lines and report the exit (bounded).
        for _ in range(int(2 * POLL_S / 0.02) + 10):
            if agent.process is not process or not agent.alive:
                return
            await asyncio.sleep(0.02)

    async def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        await asyncio.gather(*(self.stop(a.name, grace_s) for a in self.running()))

    def keep_all(self) -> list[AgentProcess]:
        """Leave every running agent running after the console exits; stop watching them."""
        kept = self.running()
        for agent in kept:
            agent.state = AgentState.KEPT
            agent.process = None
            self._notify("state", agent)
        for watcher in list(self._watchers):
            watcher.cancel()
        return kept

    async def close(self, keep: bool = False) -> None:
        """The console is exiting: stop the agents (default) or leave them running."""
        if keep:
            kept = self.keep_all()
            for agent in kept:
                log.info("left %s running (PID %s)", agent.name, agent.pid)
        else:
            await self.stop_all()
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._watchers:
            await asyncio.wait(set(self._watchers))


def _write_config(path: Path, config: dict[str, Any]) -> None:
    """Write atomically (a restart must never read half a file), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
