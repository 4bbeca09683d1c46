"""What 200 agents cost the hub: registration rate, time to all-up, steady-state CPU and memory.

A studio plus its render farm is tens to a few hundred agents, all checked every second.
The target is that 200 of them take at most a quarter of one core on the hub at steady
state, so the desktop console that embeds the hub stays responsive. This benchmark runs
the real hub (``controlroom --headless`` in its own process) and one load process (this
script) holding ``--agents`` simulated agents. Each is a real WebSocket connection to
``/api/v1/agents`` that speaks the real protocol: it enrolls with its own one-time token
(created over HTTP first), sends ``hello``, waits for ``welcome`` and answers every
``ping`` with a ``pong``; the hub cannot tell them from real engines.

It measures:

- **registration**: with every socket already open, the time from the first ``hello`` to
  the last ``welcome`` (registrations per second), and each agent's hello -> welcome;
- **all up**: from the first ``hello`` until ``GET /api/v1/components`` lists every agent
  as up (polled every 100 ms), and until the last ``component.state`` up event arrived;
- **steady state**: after a settling pause, over ``--seconds``, the hub process's CPU
  (user + system of all its threads, as % of one core) and RSS, the same for this load
  process (to show the load generator is not the bottleneck) and the whole machine;
  against an idle-hub baseline measured before any agent connects;
- **health during it**: ``component.state`` down events in the window (should be none),
  checks each agent answered, the longest gap between two checks any agent saw, the
  round-trip times the hub measured, and that every agent is still up at the end.

Run: ``.venv/bin/python benchmarks/scale.py [--agents N] [--seconds S] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import psutil
from harness import (
    EventStream,
    Observed,
    Reaper,
    enroll,
    fmt_duration,
    machine,
    progress,
    raise_fd_limit,
    retried,
    sigterm_as_interrupt,
    start_hub,
    summary,
    table,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.client import HubClient

CPU_TARGET_PERCENT = 25.0
#: The hub's default check interval; the steady state runs with the hub's defaults.
INTERVAL_S = 1.0
WELCOME_TIMEOUT_S = 30.0
ALL_UP_TIMEOUT_S = 60.0
POLL_S = 0.1
ENROLL_CONCURRENCY = 8


def frame(message: dict[str, Any]) -> str:
    """A compact JSON text frame, as the real agent's codec writes it."""
    return json.dumps(message, separators=(",", ":"))


@dataclass
class SimAgent:
    """One simulated engine: a socket, its token and what it saw.

    Its own raw WebSocket to ``/api/v1/agents``, on purpose: it plays the agent's side of
    the agent protocol (HubClient is the operator's side), and the figures are what these
    sockets cost the hub.
    """

    name: str
    token: str
    ws: ClientConnection | None = None
    hello_sent: float = 0.0
    welcomed: float = 0.0
    pings: list[float] = field(default_factory=list)  # arrival time of every ping
    ended: str | None = None

    async def register(self) -> None:
        """Send hello, wait for welcome (the socket is already open)."""
        assert self.ws is not None
        hello = {"type": "hello", "kind": "engine", "name": self.name, "config": {},
                 "enroll_token": self.token}
        self.hello_sent = time.monotonic()
        await self.ws.send(frame(hello))
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), WELCOME_TIMEOUT_S))
        self.welcomed = time.monotonic()
        if reply.get("type") != "welcome":
            raise RuntimeError(f"{self.name}: expected welcome, got {reply}")

    async def answer(self) -> None:
        """Answer every health check until the socket closes."""
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    self.pings.append(time.monotonic())
                    await self.ws.send(frame({"type": "pong", "seq": message["seq"]}))
        except ConnectionClosed as exc:
            self.ended = f"closed: {exc}"
        else:
            self.ended = "closed by the hub"


@dataclass
class CpuSample:
    """CPU of a process over a window, from its cpu_times (all threads)."""

    cpu_s: float
    wall_s: float

    @property
    def percent_of_one_core(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def measure_window(hub: psutil.Process, seconds: float) -> dict[str, Any]:
    """Sample hub, load process and machine once a second over ``seconds``."""
    me = psutil.Process()
    per_second: list[float] = []
    rss: list[int] = []
    psutil.cpu_percent(None)
    hub.cpu_percent(None)
    start = time.monotonic()
    hub0, me0 = cpu_seconds(hub), cpu_seconds(me)
    deadline = start + seconds
    while (now := time.monotonic()) < deadline:
        await asyncio.sleep(min(1.0, deadline - now))
        per_second.append(hub.cpu_percent(None))
        rss.append(hub.memory_info().rss)
    wall = time.monotonic() - start
    machine_percent = psutil.cpu_percent(None)  # of all CPUs together
    cpus = psutil.cpu_count() or 1
    hub_cpu = CpuSample(cpu_seconds(hub) - hub0, wall)
    load_cpu = CpuSample(cpu_seconds(me) - me0, wall)
    machine_cores = machine_percent / 100.0 * cpus
    other = machine_cores * 100.0 - hub_cpu.percent_of_one_core - load_cpu.percent_of_one_core
    return {
        "wall_s": wall,
        "hub_cpu_percent_of_one_core": hub_cpu.percent_of_one_core,
        "hub_cpu_per_second": summary(per_second),
        "hub_rss_mib": max(rss) / 2**20 if rss else hub.memory_info().rss / 2**20,
        "hub_threads": hub.num_threads(),
        "load_cpu_percent_of_one_core": load_cpu.percent_of_one_core,
        "machine_cpu_cores_busy": machine_cores,
        "other_cpu_percent_of_one_core": max(0.0, other),
        "loadavg_1_5_15": [round(x, 2) for x in psutil.getloadavg()],
        "started": start,
        "ended": start + wall,
    }


async def enrollment_tokens(client: HubClient, n: int) -> list[str]:
    gate = asyncio.Semaphore(ENROLL_CONCURRENCY)

    async def one() -> str:
        async with gate:
            return await enroll(client, "engine")

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def wait_all_up(client: HubClient, names: set[str], since: float) -> float:
    """Seconds from ``since`` until GET /api/v1/components shows every name up."""
    async with asyncio.timeout(ALL_UP_TIMEOUT_S):
        while True:
            listing = await retried(client.components)
            now = time.monotonic()
            up = {c["id"] for c in listing if c["state"] == "up"}
            if names <= up:
                return now - since
            await asyncio.sleep(POLL_S)


async def up_events(stream: EventStream, mark: int, names: set[str]) -> list[Observed]:
    """The first ``component.state`` up event of each name after ``mark`` (waits for all)."""
    first: dict[str, Observed] = {}

    def collect(event: Observed) -> bool:
        if (event.type == "component.state" and event.data.get("new") == "up"
                and event.subject in names):
            first.setdefault(event.subject, event)
        return len(first) == len(names)

    with contextlib.suppress(TimeoutError):
        await stream.wait_for(collect, mark, ALL_UP_TIMEOUT_S)
    return list(first.values())


def ping_health(agents: list[SimAgent], start: float, end: float) -> dict[str, Any]:
    """Checks each agent received in the window and the longest gap between two of them."""
    counts: list[float] = []
    gaps: list[float] = []
    for agent in agents:
        inside = [t for t in agent.pings if start <= t <= end]
        counts.append(len(inside))
        gaps.extend(b - a for a, b in itertools.pairwise(inside))
    return {
        "pings_per_agent": summary(counts),
        "expected_per_agent": (end - start) / INTERVAL_S,
        "gap_between_pings_s": summary(gaps),
    }


async def run(args: argparse.Namespace, reaper: Reaper) -> dict[str, Any]:
    before = machine()
    progress(f"starting a headless hub{' with TLS' if args.tls else ''} ...")
    hub = await start_hub(reaper, ["--tls", "on"] if args.tls else [])
    hub_proc = psutil.Process(hub.pid)
    stream = EventStream(hub)
    await stream.start()
    agents: list[SimAgent] = []
    answering: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {
        "benchmark": "scale", "date": time.strftime("%Y-%m-%d"), "machine": before,
        "agents": args.agents, "seconds": args.seconds, "health_interval_s": INTERVAL_S,
        "transport": "wss" if args.tls else "ws",
        "target_hub_cpu_percent_of_one_core": CPU_TARGET_PERCENT,
    }
    try:
        async with hub.client(timeout=30) as client:
            progress(f"hub {hub.url} (pid {hub.pid}); idle baseline for {args.baseline:g} s ...")
            await asyncio.sleep(1.0)  # let start-up work finish
            result["idle"] = await measure_window(hub_proc, args.baseline)

            started = time.monotonic()
            tokens = await enrollment_tokens(client, args.agents)
            took = time.monotonic() - started
            result["enrollments"] = {"seconds": took, "per_second": args.agents / took}
            agents = [SimAgent(f"sim-{i:04d}", token) for i, token in enumerate(tokens)]

            progress(f"opening {args.agents} WebSocket connections ...")
            started = time.monotonic()
            sockets = await asyncio.gather(*(
                connect(hub.ws_url, open_timeout=30, ping_interval=20, ping_timeout=20,
                        ssl=hub.ssl)
                for _ in agents
            ))
            for agent, ws in zip(agents, sockets, strict=True):
                agent.ws = ws
            result["connect_all_s"] = time.monotonic() - started

            progress(f"registering {args.agents} agents (hello -> welcome) ...")
            mark = stream.mark()
            await asyncio.gather(*(agent.register() for agent in agents))
            first_hello = min(a.hello_sent for a in agents)
            last_welcome = max(a.welcomed for a in agents)
            answering = [asyncio.create_task(a.answer(), name=a.name) for a in agents]
            span = last_welcome - first_hello
            result["registration"] = {
                "first_hello_to_last_welcome_s": span,
                "per_second": args.agents / span if span > 0 else None,
                "hello_to_welcome_s": summary([a.welcomed - a.hello_sent for a in agents]),
            }
            names = {a.name for a in agents}
            listed_up = await wait_all_up(client, names, first_hello)
            ups = await up_events(stream, mark, names)
            result["all_up"] = {
                "listed_up_after_first_hello_s": listed_up,
                "last_up_event_after_first_hello_s":
                    max(e.arrived for e in ups) - first_hello if ups else None,
                "up_events": len(ups),
            }

            progress(f"all up; settling {args.settle:g} s, then measuring {args.seconds:g} s ...")
            await asyncio.sleep(args.settle)
            mark = stream.mark()
            window = await measure_window(hub_proc, args.seconds)
            await asyncio.sleep(0.2)  # let a down event in the window's last instant arrive
            downs = [e for e in stream.since(mark)
                     if e.type == "component.state" and e.data.get("new") == "down"
                     and e.arrived <= window["ended"] + 0.2]
            listing = await retried(client.components)
            sims = [c for c in listing if c["id"] in names]
            rtts = [c["rtt_ms"] for c in sims if c["rtt_ms"] is not None]
            steady: dict[str, Any] = dict(window)
            steady.update(ping_health(agents, window["started"], window["ended"]))
            steady["down_events"] = len(downs)
            steady["down_examples"] = [f"{e.subject}: {e.data.get('reason')}" for e in downs[:5]]
            steady["up_at_end"] = sum(c["state"] == "up" for c in sims)
            steady["hub_rtt_ms"] = summary(rtts)
            steady["agents_ended"] = sum(a.ended is not None for a in agents)
            idle = result["idle"]
            steady["hub_cpu_per_agent_percent"] = (
                steady["hub_cpu_percent_of_one_core"] - idle["hub_cpu_percent_of_one_core"]
            ) / args.agents
            steady["hub_rss_per_agent_kib"] = (
                (steady["hub_rss_mib"] - idle["hub_rss_mib"]) * 1024 / args.agents
            )
            result["steady"] = steady
            result["met"] = (
                steady["hub_cpu_percent_of_one_core"] <= CPU_TARGET_PERCENT
                and not downs and steady["up_at_end"] == args.agents
            )
    finally:
        progress("closing the agents ...")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*(a.ws.close() for a in agents if a.ws is not None),
                                     return_exceptions=True)
        for task in answering:
            task.cancel()
        await asyncio.gather(*answering, return_exceptions=True)
        await stream.close()
    return result


def report(r: dict[str, Any]) -> str:
    s, idle, reg = r["steady"], r["idle"], r["registration"]
    m = r["machine"]
    n = r["agents"]
    lines = [
        f"scale: {n} simulated agents (real WebSocket, real protocol) against one headless hub",
        f"machine: {m['cpus']} CPUs, Python {m['python']}, load average at start "
        f"{m['loadavg_1_5_15']}, during the window {s['loadavg_1_5_15']}",
        "",
    ]
    hw = reg["hello_to_welcome_s"]
    rows = [
        ["figure", "value"],
        ["enrollment tokens (HTTP, 8 at a time)",
         f"{r['enrollments']['per_second']:.0f}/s"],
        [f"open {n} WebSocket connections", fmt_duration(r["connect_all_s"])],
        ["registration: first hello -> last welcome",
         f"{fmt_duration(reg['first_hello_to_last_welcome_s'])} "
         f"= {reg['per_second'] or float('inf'):.0f} registrations/s"],
        ["  one agent's hello -> welcome (median / max)",
         f"{fmt_duration(hw['median'])} / {fmt_duration(hw['max'])}"],
        ["first hello -> all listed up (GET components)",
         fmt_duration(r["all_up"]["listed_up_after_first_hello_s"])],
        ["first hello -> last up event (SSE)",
         "-" if r["all_up"]["last_up_event_after_first_hello_s"] is None
         else fmt_duration(r["all_up"]["last_up_event_after_first_hello_s"])],
    ]
    lines += table(rows)
    cpu = s["hub_cpu_per_second"]
    rows = [
        [f"steady state, {s['wall_s']:.0f} s window", "idle hub", f"{n} agents", "target",
         "met"],
        ["hub CPU, % of one core", f"{idle['hub_cpu_percent_of_one_core']:.1f} %",
         f"{s['hub_cpu_percent_of_one_core']:.1f} %", f"<= {CPU_TARGET_PERCENT:.0f} %",
         "yes" if s["hub_cpu_percent_of_one_core"] <= CPU_TARGET_PERCENT else "NO"],
        ["  per-second samples, min / max", "",
         f"{cpu['min']:.0f} / {cpu['max']:.0f} %", "", ""],
        ["  per agent", "", f"{s['hub_cpu_per_agent_percent']:.3f} %", "", ""],
        ["hub RSS", f"{idle['hub_rss_mib']:.0f} MiB", f"{s['hub_rss_mib']:.0f} MiB", "", ""],
        ["  per agent", "", f"{s['hub_rss_per_agent_kib']:.0f} KiB", "", ""],
        ["load process CPU, % of one core", f"{idle['load_cpu_percent_of_one_core']:.1f} %",
         f"{s['load_cpu_percent_of_one_core']:.1f} %", "", ""],
        ["rest of the machine, % of one core", f"{idle['other_cpu_percent_of_one_core']:.0f} %",
         f"{s['other_cpu_percent_of_one_core']:.0f} %", "", ""],
        ["down events in the window", "", str(s["down_events"]), "0",
         "yes" if not s["down_events"] else "NO"],
        ["agents up at the end", "", f"{s['up_at_end']}/{n}", f"{n}/{n}",
         "yes" if s["up_at_end"] == n else "NO"],
    ]
    lines += ["", *table(rows)]
    pings, gap, rtt = s["pings_per_agent"], s["gap_between_pings_s"], s["hub_rtt_ms"]
    lines += [
        "",
        f"checks answered per agent in the window: min {pings['min']:.0f}, "
        f"median {pings['median']:.0f} (expected ~{s['expected_per_agent']:.0f}); "
        f"gap between checks: median {fmt_duration(gap['median'])}, "
        f"max {fmt_duration(gap['max'])}",
        f"round trip the hub measured (last check): median {rtt['median']:.2f} ms, "
        f"max {rtt['max']:.2f} ms",
    ]
    if s["down_examples"]:
        lines.append(f"down events: {s['down_examples']}")
    return "\n".join(lines)


TLS_RATIO_TARGET = 1.5


def compare_tls(args: argparse.Namespace,
                bounded: Callable[[Reaper, bool], Coroutine[Any, Any, dict[str, Any]]]) -> int:
    """The same load over WS and then WSS, each against a fresh hub; the hub's steady CPU
    (all its threads, % of one core) side by side and as a ratio."""
    results: dict[str, dict[str, Any]] = {}
    for tls in (False, True):
        with Reaper(keep=args.keep) as reaper:
            results["wss" if tls else "ws"] = asyncio.run(bounded(reaper, tls))
        progress(report(results["wss" if tls else "ws"]))
    ws, wss = (results[k]["steady"] for k in ("ws", "wss"))
    ratio = wss["hub_cpu_percent_of_one_core"] / max(ws["hub_cpu_percent_of_one_core"], 1e-9)
    reg = [results[k]["registration"]["first_hello_to_last_welcome_s"] for k in ("ws", "wss")]
    comparison = {
        "agents": args.agents,
        "hub_cpu_percent_of_one_core": {"ws": round(ws["hub_cpu_percent_of_one_core"], 2),
                                        "wss": round(wss["hub_cpu_percent_of_one_core"], 2)},
        "hub_rss_mib": {"ws": round(ws["hub_rss_mib"], 1), "wss": round(wss["hub_rss_mib"], 1)},
        "registration_s": {"ws": round(reg[0], 2), "wss": round(reg[1], 2)},
        "down_events": {"ws": ws["down_events"], "wss": wss["down_events"]},
        "cpu_ratio_wss_over_ws": round(ratio, 2), "target": TLS_RATIO_TARGET,
        "met": ratio <= TLS_RATIO_TARGET and not ws["down_events"] and not wss["down_events"],
    }
    print(json.dumps(comparison, indent=2))
    return 0 if comparison["met"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200, help="simulated agents (200)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="steady-state measuring window in seconds (20)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="pause between all-up and the window, seconds (3)")
    parser.add_argument("--baseline", type=float, default=5.0,
                        help="idle-hub measuring window before any agent, seconds (5)")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout; the table goes to stderr")
    parser.add_argument("--budget", type=float, default=600.0, metavar="S",
                        help="abort the whole run after S seconds (default 600)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary data dir and logs for inspection")
    parser.add_argument("--tls", action="store_true",
                        help="the hub serves TLS (--tls on) and the agents connect over WSS")
    parser.add_argument("--compare-tls", action="store_true",
                        help="run twice in this one invocation, WS then WSS, and print the "
                        "ratio of the hub's CPU (target: WSS at most 1.5x WS)")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.seconds <= 0 or args.settle < 0 or args.baseline <= 0:
        parser.error("--agents >= 1, --seconds > 0, --baseline > 0 and --settle >= 0")
    sigterm_as_interrupt()
    raise_fd_limit(4 * args.agents + 1024)

    async def bounded(reaper: Reaper, tls: bool) -> dict[str, Any]:
        async with asyncio.timeout(args.budget):
            return await run(argparse.Namespace(**{**vars(args), "tls": tls}), reaper)

    try:
        if args.compare_tls:
            return compare_tls(args, bounded)
        with Reaper(keep=args.keep) as reaper:
            result = asyncio.run(bounded(reaper, args.tls))
    except KeyboardInterrupt:
        progress("interrupted; every process this benchmark started has been stopped")
        return 130
    except TimeoutError as exc:
        progress(f"gave up: {exc or f'the {args.budget:g} s budget ran out'}")
        return 1
    if args.json:
        progress(report(result))
        print(json.dumps(result, indent=2))
    else:
        print(report(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
