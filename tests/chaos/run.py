"""One chaos run: a studio under a seeded schedule of faults, then checked Jepsen-style.

The same code serves the short run in CI (``tests/chaos/test_chaos.py``) and the long run
by script (``benchmarks/chaos.py``); only the duration differs. Everything is a real
process on real sockets: a hub on a fixed port, an engine and two instance drivers, two
runners, a standalone node (flows from ``tests/integration/node_flows.py``) and the hub's
embedded node; the agents reach the hub through :class:`chaos.proxy.Proxy`.

While the faults fall, three workloads run at once: command jobs (each appends a token of
its own to a ledger file the test owns, then sleeps; some are cancelled, some time out),
renders of two reserved tasks (some cancelled), and flows (``gate`` runs waiting on
locks, answered after a while, sometimes with a denied candidate first; ``chatty`` runs
streaming events). The faults, picked by ``random.Random(seed)``: SIGKILL (then a
restart) and SIGSTOP (then SIGCONT) of the engine, a driver, a runner, the node and a
flow worker; SIGKILL of the hub and a restart on the same data dir and port; the proxy
dropping every connection, delaying every byte, or going half-open.

Then the faults stop, everything is resumed and restarted, the open locks are answered,
and the run waits (bounded) for the work to end. The checks, each counted as lost,
duplicated or unexpected (all three must be 0):

- jobs: one terminal state each (``succeeded``, ``failed``, ``cancelled``, ``timed_out``),
  a reason for every one but ``succeeded``, at most one ``ended`` applied; the ledger
  holds the job's token exactly as many times as the hub recorded ``started`` reports;
- renders: ``done`` with a file bit-identical to the clean render of the same task made
  before the faults, or ``failed``/``cancelled`` with a reason; no other file in the hub's
  render store, no file left in the engine's render dir;
- runs: final; offsets 1..n with exactly one ``final``, last; a ``gate`` run whose worker
  the schedule did not kill ends ``done`` with a candidate it was given (no lock lost);
  a ``chatty`` run that is ``done`` logged every line once;
- the hub's memory (VmRSS) at the end of each lifetime against that lifetime's baseline;
- no 500 from the hub or a node to any call the workload made.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from node_processes import NodeProcess, kill_workers
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import FAST
from task_calls import TaskCalls, two_driver_spec

from chaos.proxy import Proxy

#: Fault kinds and their weights in the schedule.
KINDS: dict[str, int] = {
    "engine.kill": 2, "engine.stop": 2, "driver.kill": 2, "driver.stop": 1,
    "runner.kill": 3, "runner.stop": 2, "node.kill": 2, "node.stop": 1,
    "worker.kill": 1, "worker.stop": 2, "hub.kill": 2,
    "net.drop": 2, "net.delay": 2, "net.half_open": 1,
}
JOB_FINAL = {"succeeded", "failed", "cancelled", "timed_out"}
RUN_FINAL = {"done", "error", "cancelled", "interrupted"}
#: A lifetime of the hub may grow this much (VmRSS) from its baseline: generous, as the
#: suite runs on a loaded machine and the allocator keeps what it once had.
RSS_GROWTH_LIMIT_KB = 100 * 1024

SPEC = two_driver_spec(12)


def dynamic_spec() -> dict[str, Any]:
    """SPEC with every instance in the engine (no driver), in another window."""
    spec = copy.deepcopy(SPEC)
    for instance in spec["instances"].values():
        instance.pop("location", None)
    spec["window"] = {"start": "2026-11-22T13:00:00Z", "end": "2026-11-22T15:00:00Z"}
    return spec


@dataclass
class Report:
    """What a run did and found; ``ok`` when lost, duplicated and unexpected are all 0."""

    seed: int
    seconds: float
    faults: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    memory_kb: list[tuple[int, int]] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)

    def summary(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        growth = [end - base for base, end in self.memory_kb]
        lines = [
            f"chaos seed {self.seed}: {self.seconds:.0f} s of faults, {self.wall_s:.0f} s wall",
            f"faults ({sum(self.faults.values())}): {faults}",
            f"checked: {counts}",
            f"hub RSS growth per lifetime (KiB): {growth}",
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"unexpected {len(self.unexpected)}",
        ]
        for name, items in (("lost", self.lost), ("duplicated", self.duplicated),
                            ("unexpected", self.unexpected)):
            lines += [f"  {name}: {item}" for item in items[:40]]
        lines.append(f"replay: CONTROLROOM_CHAOS_SEED={self.seed} "
                     f"CONTROLROOM_CHAOS_SECONDS={self.seconds:g}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "seconds": self.seconds, "wall_s": round(self.wall_s, 1),
                "faults": dict(self.faults), "counts": dict(self.counts),
                "lost": self.lost, "duplicated": self.duplicated,
                "unexpected": self.unexpected,
                "rss_growth_kb": [end - base for base, end in self.memory_kb]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ViaProxy:
    """What :class:`NodeProcess` needs of a hub, with the proxy's address as its URL."""

    def __init__(self, hub: HubProcess, url: str) -> None:
        self.hub = hub
        self.url = url
        self.client = hub.client

    def enroll(self, kind: str = "engine", **body: Any) -> str:
        return self.hub.enroll(kind, **body)


class Agent:
    """An agent process the schedule may kill, stop and restart (same name and data)."""

    def __init__(self, url: str, kind: str, name: str, data_dir: Path, token: str,
                 *extra: str) -> None:
        self.url, self.kind, self.name, self.data_dir = url, kind, name, data_dir
        self.extra = extra
        self.proc = AgentProcess(url, kind, name, data_dir, token, *extra)
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.proc.proc.pid

    def alive(self) -> bool:
        return self.proc.proc.poll() is None

    def kill(self) -> None:
        self.proc.send(signal.SIGKILL)
        self.proc.wait(15)
        self.stopped = False

    def restart(self) -> None:
        if not self.alive():
            self.proc = AgentProcess(self.url, self.kind, self.name, self.data_dir, None,
                                     *self.extra)

    def pause(self) -> None:
        self.proc.send(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.alive():
            self.proc.send(signal.SIGCONT)
        self.stopped = False


class Studio:
    """The processes of one run and how to reach them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub = HubProcess(root / "hub", port=free_port())
        self.proxy: Proxy | None = None
        self.agents: dict[str, Agent] = {}
        self.node: NodeProcess | None = None
        self.node_stopped = False
        #: per hub lifetime measured: [which start, baseline VmRSS, last VmRSS] (KiB)
        self.lifetimes: list[list[int]] = []

    # -- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        self.hub.start()
        self.proxy = Proxy(self.hub.port).start()
        url = f"http://127.0.0.1:{self.proxy.port}"
        agents = self.root / "agents"
        self.agents["engine-1"] = Agent(url, "engine", "engine-1", agents / "engine-1",
                                        self.hub.enroll("engine"))
        for name in ("driver-1", "driver-2"):
            self.agents[name] = Agent(url, "driver", name, agents / name,
                                      self.hub.enroll("driver"))
        for name in ("r1", "r2"):
            config = self.root / f"{name}.config.json"
            config.write_text(json.dumps({**FAST, "heartbeat_s": 1.0}))
            self.agents[name] = Agent(url, "runner", name, agents / name,
                                      self.hub.enroll("runner"), "--config", str(config))
        self.node = NodeProcess(ViaProxy(self.hub, url), "node-a",  # type: ignore[arg-type]
                                self.root / "node-a")
        self.node.start(wait_linked=False)
        self.wait_up(60)

    def wait_up(self, timeout: float) -> None:
        names = [*self.agents, "node-a"]

        def up() -> bool:
            try:
                components = self.hub.components()
            except httpx.HTTPError:
                return False
            return all(components.get(n, {}).get("state") == "up" for n in names)

        try:
            wait_until(up, timeout, f"{names} to be up at the hub", step=0.2)
        except AssertionError:
            states = {n: c.get("state") for n, c in self.hub.components().items()}
            raise AssertionError(f"not all up after {timeout:g} s: {states}") from None

    def close(self) -> None:
        for agent in self.agents.values():
            agent.resume()
            agent.proc.close()
        if self.node is not None:
            if self.node.proc is not None and self.node.proc.poll() is None:
                self.node.proc.send_signal(signal.SIGCONT)
            self.node.close()
        kill_workers(self.hub.data_dir / "node")
        if self.hub.proc is not None and self.hub.proc.poll() is None:
            self.hub.send(signal.SIGCONT)
        self.hub.close()
        if self.proxy is not None:
            self.proxy.close()

    # -- the hub ----------------------------------------------------------------------------

    def sample_rss(self, baseline: bool = False) -> None:
        proc = self.hub.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            kb = rss_kb(proc.pid)
        except OSError:
            return
        if baseline:
            self.lifetimes.append([self.hub.starts, kb, kb])
        elif self.lifetimes and self.lifetimes[-1][0] == self.hub.starts:
            self.lifetimes[-1][2] = kb

    def restart_hub(self) -> None:
        self.sample_rss()
        assert self.hub.proc is not None
        self.hub.proc.kill()
        self.hub.proc.wait(15)
        self.hub.start()


class Recorder:
    """Thread-safe notes the workloads leave for the checks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server_errors: list[str] = []
        self.killed_fids: set[str] = set()
        self.cancelled_fids: set[str] = set()
        self.runs: dict[str, dict[str, Any]] = {}  # fid -> {node, flow, inputs, given}
        self.renders = Counter[str]()

    def server_error(self, what: str, r: httpx.Response) -> None:
        if r.status_code == 500:
            with self.lock:
                self.server_errors.append(f"{what}: 500 {r.text[:200]}")


class Workload:
    """The three workloads, each a thread, each tolerant of every fault (a call that fails
    is tried again later): the checks judge the outcome, not the calls."""

    def __init__(self, studio: Studio, rec: Recorder, seed: int, tasks: list[str]) -> None:
        self.studio = studio
        self.rec = rec
        self.seed = seed
        self.tasks = tasks
        self.stop = threading.Event()
        self.ledger = studio.root / "ledger.txt"
        self.threads = [threading.Thread(target=self._guard, args=(fn, i), daemon=True)
                        for i, fn in enumerate((self.jobs, self.flows,
                                                *[self._render_loop(t) for t in tasks]))]
        self.crashes: list[str] = []

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _guard(self, fn: Callable[[random.Random], None], i: int) -> None:
        try:
            fn(random.Random(self.seed * 1000 + i))
        except Exception:  # a bug in the workload itself must fail the run loudly
            self.crashes.append(traceback.format_exc())

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=8, headers=self.studio.hub.auth)

    @property
    def api(self) -> str:
        return f"{self.studio.hub.url}/api/v1"

    # -- jobs -------------------------------------------------------------------------------

    def jobs(self, rng: random.Random) -> None:
        n = 0
        with self.client() as c:
            while not self.stop.wait(rng.uniform(0.2, 0.6)):
                n += 1
                token = f"job{n}"
                seconds = round(rng.uniform(0.2, 2.5), 2)
                body: dict[str, Any] = {
                    "kind": "command", "needs": {"cpus": 0.25},
                    "payload": {"argv": ["/bin/sh", "-c",
                                         f"echo {token} >> {self.ledger}; sleep {seconds}"]}}
                if rng.random() < 0.07:
                    body["timeout_s"] = 0.5  # ends timed_out, unless it never starts
                try:
                    r = c.post(f"{self.api}/jobs", json=body)
                    self.rec.server_error("submit a job", r)
                    if rng.random() < 0.12 and r.status_code == 201:
                        time.sleep(rng.uniform(0, 1.0))
                        jid = r.json()["id"]
                        r = c.post(f"{self.api}/jobs/{jid}/cancel")
                        self.rec.server_error("cancel a job", r)
                except httpx.HTTPError:
                    pass

    # -- renders ----------------------------------------------------------------------------

    def _render_loop(self, task_id: str) -> Callable[[random.Random], None]:
        def loop(rng: random.Random) -> None:
            with self.client() as c:
                while not self.stop.wait(rng.uniform(0.1, 0.8)):
                    try:
                        self._render_once(c, rng, task_id)
                    except httpx.HTTPError:
                        pass

        return loop

    def _render_once(self, c: httpx.Client, rng: random.Random, task_id: str) -> None:
        r = c.post(f"{self.api}/tasks/{task_id}/render", json={"format": "wav24"})
        self.rec.server_error("start a render", r)
        if r.status_code != 202:
            return  # not ready (a component is down or coming back): later
        rid = r.json()["render_id"]
        with self.rec.lock:
            self.rec.renders["started"] += 1
        cancel_at = time.monotonic() + rng.uniform(0.3, 4) if rng.random() < 0.2 else None
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
            r = c.get(f"{self.api}/tasks/{task_id}/renders/{rid}")
            self.rec.server_error("read a render", r)
            if r.status_code == 200 and r.json()["state"] != "running":
                return
            if cancel_at is not None and time.monotonic() > cancel_at:
                cancel_at = None
                r = c.post(f"{self.api}/tasks/{task_id}/renders/{rid}/cancel")
                self.rec.server_error("cancel a render", r)

    # -- flows ------------------------------------------------------------------------------

    def node_base(self, node: str) -> tuple[str, dict[str, str]]:
        """The /node/v1 base URL and auth of the standalone node or the embedded one."""
        if node == "local":
            return f"{self.studio.hub.url}/node/v1", self.studio.hub.auth
        assert self.studio.node is not None
        return f"{self.studio.node.url}/node/v1", self.studio.node.auth

    def launch(self, c: httpx.Client, node: str, flow: str, inputs: dict[str, Any]) -> None:
        base, auth = self.node_base(node)
        r = c.post(f"{base}/runs", json={"flow": flow, "inputs": inputs}, headers=auth)
        self.rec.server_error(f"launch {flow} on {node}", r)
        if r.status_code == 201:
            with self.rec.lock:
                self.rec.runs[r.json()["fid"]] = {"node": node, "flow": flow,
                                                  "inputs": inputs, "given": []}

    def answer(self, c: httpx.Client, fid: str, rng: random.Random | None) -> None:
        """Answer the run's open lock: a gain it must deny first, sometimes; then one it
        takes. Every candidate sent is noted (a 504 or a cut may still deliver it)."""
        run = self.rec.runs[fid]
        base, auth = self.node_base(run["node"])
        r = c.get(f"{base}/runs/{fid}", headers=auth)
        self.rec.server_error("read a run", r)
        if r.status_code != 200 or r.json()["state"] != "locked" or not r.json()["locks"]:
            return
        lid = r.json()["locks"][0]["lid"]
        if rng is not None and rng.random() < 0.3:
            r = c.post(f"{base}/runs/{fid}/lock/{lid}/candidate", json={"gain_db": 3},
                       headers=auth, timeout=15)
            self.rec.server_error("deny a candidate", r)
        gain = -float(len(run["given"]) + 1)
        with self.rec.lock:
            run["given"].append(gain)
        r = c.post(f"{base}/runs/{fid}/lock/{lid}/candidate", json={"gain_db": gain},
                   headers=auth, timeout=15)
        self.rec.server_error("answer a lock", r)

    def flows(self, rng: random.Random) -> None:
        with self.client() as c:
            while not self.stop.wait(rng.uniform(0.3, 1.0)):
                try:
                    self._flows_once(c, rng)
                except httpx.HTTPError:
                    pass

    def _flows_once(self, c: httpx.Client, rng: random.Random) -> None:
        with self.rec.lock:
            live = [fid for fid, run in self.rec.runs.items() if not run.get("final")]
        if len(live) < 6:
            node = rng.choice(("node-a", "local"))
            if rng.random() < 0.75:
                self.launch(c, node, "gate", {"release_timeout": 5,
                                              "no_candidate_timeout": 3600})
            else:
                self.launch(c, node, "chatty", {"events": rng.randint(50, 300),
                                                "every_s": 0.01})
        for fid in live:
            run = self.rec.runs[fid]
            base, auth = self.node_base(run["node"])
            r = c.get(f"{base}/runs/{fid}", headers=auth)
            self.rec.server_error("read a run", r)
            if r.status_code != 200:
                continue
            state = r.json()["state"]
            if state in RUN_FINAL:
                run["final"] = state
            elif state == "locked" and rng.random() < 0.3:
                self.answer(c, fid, rng)
            elif rng.random() < 0.02:
                with self.rec.lock:
                    self.rec.cancelled_fids.add(fid)
                r = c.post(f"{base}/runs/{fid}/cancel", headers=auth)
                self.rec.server_error("cancel a run", r)


class Schedule:
    """The seeded fault schedule: what to do next, to whom, and when to undo it."""

    def __init__(self, studio: Studio, work: Workload, rec: Recorder, seed: int,
                 faults: Counter[str]) -> None:
        self.studio = studio
        self.work = work
        self.rec = rec
        self.rng = random.Random(seed)
        self.faults = faults
        self.pending: list[tuple[float, str, Callable[[], None]]] = []  # (due, target, undo)

    def busy(self, target: str) -> bool:
        return any(t == target for _, t, _ in self.pending)

    def later(self, seconds: float, target: str, undo: Callable[[], None]) -> None:
        self.pending.append((time.monotonic() + seconds, target, undo))

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        next_fault = time.monotonic() + self.rng.uniform(0.5, 2.0)
        while time.monotonic() < end:
            self.undo_due(time.monotonic())
            if time.monotonic() >= next_fault:
                self.fault()
                next_fault = time.monotonic() + self.rng.uniform(0.3, 1.5)
            time.sleep(0.05)
        self.undo_due(float("inf"))

    def undo_due(self, now: float) -> None:
        due = sorted((p for p in self.pending if p[0] <= now), key=lambda p: p[0])
        self.pending = [p for p in self.pending if p[0] > now]
        for _, _, undo in due:
            undo()

    def fault(self) -> None:
        kinds = list(KINDS)
        kind = self.rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        what, how = kind.split(".")
        s = self.studio
        if what in ("engine", "driver", "runner"):
            names = {"engine": ["engine-1"], "driver": ["driver-1", "driver-2"],
                     "runner": ["r1", "r2"]}[what]
            name = self.rng.choice(names)
            if self.busy(name):
                return
            agent = s.agents[name]
            if how == "kill":
                agent.kill()
                self.later(self.rng.uniform(0.2, 2.0), name, agent.restart)
            else:
                agent.pause()
                self.later(self.rng.uniform(0.5, 5.0), name, agent.resume)
        elif what == "node":
            if self.busy("node") or s.node is None or s.node.proc is None:
                return
            node = s.node
            if how == "kill":
                node.kill(signal.SIGKILL)
                self.later(self.rng.uniform(0.2, 2.0), "node",
                           lambda: node.start(wait_linked=False))
            else:
                node.proc.send_signal(signal.SIGSTOP)
                self.later(self.rng.uniform(0.5, 5.0), "node",
                           lambda: node.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
                           if node.proc is not None else None)
        elif what == "worker":
            pid, fid = self.pick_worker()
            if pid is None or fid is None or self.busy(f"worker-{pid}"):
                return
            try:
                if how == "kill":
                    with self.rec.lock:
                        self.rec.killed_fids.add(fid)
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGSTOP)
                    self.later(self.rng.uniform(0.5, 5.0), f"worker-{pid}",
                               lambda: _signal(pid, signal.SIGCONT))
            except ProcessLookupError:
                return
        elif what == "hub":
            if self.pending_hub():
                return
            s.restart_hub()
            self.later(4.0, "hub-baseline", self.hub_baseline)
        elif what == "net":
            assert s.proxy is not None
            if self.busy("net"):
                return
            if how == "drop":
                s.proxy.drop()
            elif how == "delay":
                s.proxy.delay(self.rng.uniform(0.05, 0.6))
                self.later(self.rng.uniform(1.0, 5.0), "net", lambda: s.proxy.delay(0)  # type: ignore[union-attr]
                           )
            else:
                s.proxy.half_open(True)
                self.later(self.rng.uniform(1.0, 6.0), "net",
                           lambda: s.proxy.half_open(False))  # type: ignore[union-attr]
        self.faults[kind] += 1

    def pending_hub(self) -> bool:
        return self.busy("hub-baseline")

    def hub_baseline(self) -> None:
        self.studio.sample_rss(baseline=True)

    def pick_worker(self) -> tuple[int | None, str | None]:
        """A live worker of one of the workload's runs (pid from its node's view)."""
        with self.rec.lock:
            live = [fid for fid, run in self.rec.runs.items() if not run.get("final")]
        self.rng.shuffle(live)
        for fid in live[:3]:
            base, auth = self.work.node_base(self.rec.runs[fid]["node"])
            try:
                r = httpx.get(f"{base}/runs/{fid}", headers=auth, timeout=3)
            except httpx.HTTPError:
                continue
            if r.status_code == 200 and r.json()["state"] in ("running", "locked") \
                    and r.json().get("pid"):
                return int(r.json()["pid"]), fid
        return None, None


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# -- settle ------------------------------------------------------------------------------


def heal(studio: Studio) -> None:
    """Every process running and continued, the network plain again."""
    assert studio.proxy is not None
    studio.proxy.heal()
    for agent in studio.agents.values():
        agent.resume()
        agent.restart()
    node = studio.node
    if node is not None and node.proc is not None:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGCONT)
        else:
            node.start(wait_linked=False)


def settle(studio: Studio, work: Workload, rec: Recorder, timeout: float) -> list[str]:
    """Answer every open lock and wait for the work to end; returns what did not."""
    deadline = time.monotonic() + timeout
    try:
        studio.wait_up(max(5.0, deadline - time.monotonic()))
    except AssertionError as exc:
        return [str(exc)]
    pending: list[str] = []
    with work.client() as c:
        while time.monotonic() < deadline:
            pending = []
            try:
                jobs = c.get(f"{work.api}/jobs").json()
                pending += [f"job {j['id']} {j['state']}" for j in jobs
                            if j["state"] not in JOB_FINAL]
                for tid in work.tasks:
                    task = c.get(f"{work.api}/tasks/{tid}").json()
                    pending += [f"render {r['render_id']} running" for r in task["renders"]
                                if r["state"] == "running"]
                for fid, run in rec.runs.items():
                    base, auth = work.node_base(run["node"])
                    state = c.get(f"{base}/runs/{fid}", headers=auth).json()["state"]
                    if state == "locked":
                        work.answer(c, fid, None)
                    if state not in RUN_FINAL:
                        pending.append(f"run {fid} ({run['flow']} on {run['node']}) {state}")
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                pending = [f"the hub or a node did not answer: {exc!r}"]
            if not pending:
                return []
            time.sleep(0.5)
    return pending


# -- checks ------------------------------------------------------------------------------


def check(studio: Studio, work: Workload, rec: Recorder, clean: dict[str, bytes],
          report: Report) -> None:
    hub = studio.hub
    api = f"{hub.url}/api/v1"
    c = hub.client
    report.unexpected += [f"server error: {e}" for e in rec.server_errors]
    report.unexpected += [f"workload crashed: {t}" for t in work.crashes]

    # Jobs: one terminal state with its reason; the program ran as often as it started
    # (the job's ``attempts``: its fold counts the ``started`` reports applied).
    events = [e["data"] for e in hub.events(after=0, idle=2.0)]
    ended: Counter[str] = Counter()
    for e in events:
        if e["type"] == "job.report":
            ended[e["subject"]] += e["data"].get("event") == "ended"
    ledger = Counter(work.ledger.read_text().split()) if work.ledger.exists() else Counter()
    jobs = c.get(f"{api}/jobs").json()
    tokens = set()
    for job in jobs:
        jid, state = job["id"], job["state"]
        token = job["payload"]["argv"][2].split()[1]
        tokens.add(token)
        report.counts[f"jobs {state}"] += 1
        if state == "lost":
            report.lost.append(f"job {jid} ({token}) is lost: {job['error']}")
        elif state not in JOB_FINAL:
            report.unexpected.append(f"job {jid} ({token}) never ended: {state}")
        elif state != "succeeded" and not job["error"]:
            report.unexpected.append(f"job {jid} ({token}) is {state} with no reason")
        if ended[jid] > 1:
            report.duplicated.append(f"job {jid} ({token}): {ended[jid]} ended reports applied")
        runs, attempts = ledger[token], int(job["attempts"])
        report.counts["job runs"] += runs
        if runs > attempts:
            report.duplicated.append(f"job {jid} ({token}) ran {runs} times, "
                                     f"{attempts} started recorded ({state})")
        elif runs < attempts:
            report.lost.append(f"job {jid} ({token}) ran {runs} times, "
                               f"{attempts} started recorded ({state})")
        elif state == "succeeded" and runs != 1:
            report.unexpected.append(f"job {jid} ({token}) succeeded having run {runs} times")
    for token in set(ledger) - tokens:
        report.unexpected.append(f"ledger token {token} belongs to no job")

    # Renders: done and identical to the clean one, or failed/cancelled with a reason.
    store = hub.data_dir / "renders"
    for tid in work.tasks:
        task = c.get(f"{api}/tasks/{tid}").json()
        kept = {p.name for p in (store / tid).iterdir()} if (store / tid).exists() else set()
        for render in task["renders"]:
            rid, state = render["render_id"], render["state"]
            report.counts[f"renders {state}"] += 1
            if state == "done":
                file = c.get(f"{api}/tasks/{tid}/renders/{rid}/file")
                if file.status_code != 200 or file.content != clean[tid]:
                    report.unexpected.append(
                        f"render {rid} of {tid} is done but its file differs from the clean "
                        f"render ({file.status_code}, {len(file.content)} bytes)")
                kept.discard(render["file"])
            elif state in ("failed", "cancelled"):
                if not render["error"]:
                    report.unexpected.append(f"render {rid} is {state} with no reason")
            else:
                report.unexpected.append(f"render {rid} never ended: {state}")
        report.unexpected += [f"stray file in the hub's render store: {tid}/{name}"
                              for name in sorted(kept)]
    engine_renders = studio.agents["engine-1"].data_dir / "renders"
    if engine_renders.exists():
        report.unexpected += [f"stray file in the engine's render dir: {p.name}"
                              for p in engine_renders.iterdir()]

    # Runs: final, streams contiguous with one final event, no lock lost.
    for fid, run in rec.runs.items():
        base, auth = work.node_base(run["node"])
        state = c.get(f"{base}/runs/{fid}", headers=auth).json()
        final = state["state"]
        report.counts[f"runs {final}"] += 1
        what = f"run {fid} ({run['flow']} on {run['node']})"
        try:
            events = run_events(c, base, auth, fid)
        except httpx.HTTPError as exc:  # a stream that never ends: the run never did
            report.unexpected.append(f"{what}: its event stream did not end ({exc!r})")
            continue
        report.counts["run events"] += len(events)
        offsets = [e["offset"] for e in events]
        if offsets != list(range(1, len(offsets) + 1)):
            seen = Counter(offsets)
            dups = sorted(o for o, n in seen.items() if n > 1)
            missing = sorted(set(range(1, max(offsets, default=0) + 1)) - set(offsets))
            if dups:
                report.duplicated.append(f"{what}: event offsets repeated {dups[:10]}")
            if missing:
                report.lost.append(f"{what}: event offsets missing {missing[:10]}")
            if not dups and not missing:
                report.unexpected.append(f"{what}: event offsets out of order")
        finals = [e for e in events if e["type"] == "final"]
        if len(finals) != 1 or (events and events[-1]["type"] != "final"):
            report.unexpected.append(f"{what}: {len(finals)} final events")
        killed = fid in rec.killed_fids
        if final not in RUN_FINAL:
            report.unexpected.append(f"{what} never ended: {final}")
        elif final in ("error", "interrupted") and not state.get("reason") \
                and not state.get("error"):
            report.unexpected.append(f"{what} is {final} with no reason")
        if not killed and fid not in rec.cancelled_fids and final != "done":
            (report.lost if run["flow"] == "gate" else report.unexpected).append(
                f"{what} ended {final} ({state.get('reason')}); its worker was not killed; "
                f"candidates sent {run['given']}")
        elif run["flow"] == "gate" and final == "done":
            if state["result"]["gain_db"] not in run["given"]:
                report.unexpected.append(f"{what} released {state['result']}, never sent")
        if run["flow"] == "chatty" and final == "done":
            lines = [e for e in events if e["type"] == "log"]
            if len(lines) != run["inputs"]["events"]:
                report.unexpected.append(f"{what}: {len(lines)} log events, "
                                         f"{run['inputs']['events']} logged")

    # The hub's memory, each lifetime against its own baseline.
    studio.sample_rss()
    report.memory_kb = [(base, end) for _, base, end in studio.lifetimes]
    for i, (base, end) in enumerate(report.memory_kb):
        if end - base > RSS_GROWTH_LIMIT_KB:
            report.unexpected.append(f"hub lifetime {i + 1}: VmRSS grew {end - base} KiB "
                                     f"from {base} KiB")


def run_events(c: httpx.Client, base: str, auth: dict[str, str],
               fid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with c.stream("GET", f"{base}/runs/{fid}/events", headers={**auth, "Last-Event-ID": "0"},
                  timeout=httpx.Timeout(15, read=5)) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
    return found


# -- one run ------------------------------------------------------------------------------


def run_chaos(root: Path, seconds: float, seed: int, settle_s: float = 90.0,
              log: Callable[[str], None] = print) -> Report:
    """Start the studio, run ``seconds`` of faults, settle, check; returns the report."""
    started = time.monotonic()
    report = Report(seed, seconds)
    log(f"chaos seed {seed}, {seconds:g} s of faults (replay: CONTROLROOM_CHAOS_SEED={seed})")
    studio = Studio(root)
    try:
        studio.start()
        calls = TaskCalls(studio.hub)
        tasks = [calls.reserve(SPEC, state="ready")["id"],
                 calls.reserve(dynamic_spec(), state="ready")["id"]]
        clean = {tid: calls.render(tid, timeout=120) for tid in tasks}
        studio.sample_rss(baseline=True)
        rec = Recorder()
        work = Workload(studio, rec, seed, tasks)
        work.start()
        schedule = Schedule(studio, work, rec, seed, report.faults)
        log(f"studio up in {time.monotonic() - started:.1f} s; faults start")
        schedule.run(seconds)
        heal(studio)
        work.finish()
        log(f"faults done ({sum(report.faults.values())}); settling")
        pending = settle(studio, work, rec, settle_s)
        report.unexpected += [f"did not settle in {settle_s:g} s: {p}" for p in pending[:20]]
        check(studio, work, rec, clean, report)
        report.counts["renders started"] = rec.renders["started"]
    except Exception:
        report.unexpected.append("the run itself failed: " + traceback.format_exc())
    finally:
        studio.close()
        report.wall_s = time.monotonic() - started
    return report


def main_seed(default: int | None = None) -> int:
    """The seed from ``CONTROLROOM_CHAOS_SEED`` (``random``: a fresh one), else
    ``default``, else a fresh one (printed by the run)."""
    value = os.environ.get("CONTROLROOM_CHAOS_SEED", "")
    if value and value != "random":
        return int(value)
    if default is not None and not value:
        return default
    return random.SystemRandom().randrange(1, 2**31)


if __name__ == "__main__":  # pragma: no cover - use benchmarks/chaos.py
    sys.exit("run benchmarks/chaos.py or pytest tests/chaos")
