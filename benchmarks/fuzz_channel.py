"""The long agent-channel fuzz: the state machine of ``tests/fuzz`` against one real hub
with a healthy engine and driver, round after round, for as long as asked, with any seed
(printed, so a finding can be replayed), plus job reports through a fuzz runner, the
driver's insert port before its hello, and bursts of thousands of connects and drops.

It prints the cases run, every failure (the round's seed and Hypothesis's minimal
example), the hub's RSS before and after (after a warm-up burst, and after the last burst
once the hub settled), the healthy agents' health-check lateness (the largest gap past the
1 s check interval seen in their ``last_seen``) and their state changes (each a false
down), and exits 1 on any failure. The short, fixed-seed run is ``tests/fuzz``.

Run: ``.venv/bin/python benchmarks/fuzz_channel.py [--minutes M] [--seed N] [--burst B]``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import traceback
from pathlib import Path

from harness import (
    Reaper,
    controlroom,
    enroll,
    long_run,
    progress,
    seed_of,
    sigterm_as_interrupt,
    start_hub,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import (  # noqa: E402
    HEALTHY,
    ChannelMachine,
    Fuzz,
    FuzzRunner,
    Watch,
    burst,
    free_port,
    fuzz_jobs,
    rss_mb,
    tracebacks,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from backend.protocol import frames, insertlink  # noqa: E402


async def hub_with_agents(reaper: Reaper) -> tuple[str, str, int, Path, int]:
    """A hub with engine-1 and driver-1 up; its URL, token, pid, log and insert port."""
    hub = await start_hub(reaper)
    port = free_port()
    config = reaper.root / "driver.json"
    config.write_text(json.dumps({"insert_listen": f"127.0.0.1:{port}"}))
    async with hub.client() as client:
        for name, kind, extra in (("engine-1", "engine", ()),
                                  ("driver-1", "driver", ("--config", str(config)))):
            reaper.spawn(controlroom("agent", kind, "--hub", hub.url, "--name", name,
                                     "--token", await enroll(client, kind), "--data-dir",
                                     str(reaper.root / name), *extra), f"{name}.log")
        for _ in range(600):
            states = {c["id"]: c["state"] for c in await client.components()}
            if all(states.get(name) == "up" for name in HEALTHY):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"the healthy agents did not come up: {states}")
    return hub.url, hub.token, hub.pid, reaper.root / "logs" / "hub.log", port


def channel_round(fuzz: Fuzz, seed: int, examples: int) -> None:
    run_state_machine_as_test(
        hypothesis_seed(seed)(lambda: ChannelMachine(fuzz)),
        settings=settings(max_examples=examples, stateful_step_count=30, deadline=None,
                          database=None, suppress_health_check=list(HealthCheck),
                          phases=(Phase.generate, Phase.shrink)),
    )


def insert_round(port: int, seed: int, examples: int, fuzz: Fuzz) -> None:
    """First frames at the driver's insert port: each answered ``refused`` or closed."""

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink))
    @given(first=st.binary(max_size=64) | st.builds(
        lambda h: b"".join(insertlink.framed(frames.pack(h))),
        st.fixed_dictionaries({"k": st.sampled_from(["hello", "insert"])},
                              optional={"key": st.text(max_size=50) | st.integers()})))
    def run(first: bytes) -> None:
        fuzz.cases += 1
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(first)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        if answer:
            assert frames.unpack(answer[4:])[0]["k"] == "refused", answer[:200]

    run()


def _describe(exc: BaseException) -> str:
    """A finding in a few lines: the exception, the minimal example Hypothesis printed in
    its notes, and the assertion or error under a Flaky wrapper."""
    parts = ["".join(traceback.format_exception_only(exc)).strip()]
    for sub in getattr(exc, "exceptions", ()):
        frames_ = traceback.extract_tb(sub.__traceback__)[-2:]
        where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in frames_)
        parts.append(f"  first seen: {type(sub).__name__}: {sub} (at {where})")
    return "\n".join(parts)


def main() -> int:
    parser = long_run(__doc__)
    parser.add_argument("--burst", type=int, default=2000,
                        help="connects and drops per round (default 2000)")
    parser.add_argument("--keep", action="store_true", help="keep the hub's data and logs")
    args = parser.parse_args()
    seed = seed_of(args)
    sigterm_as_interrupt()
    failures: list[str] = []
    with Reaper(keep=args.keep) as reaper:
        url, token, pid, log, port = asyncio.run(hub_with_agents(reaper))
        fuzz = Fuzz(url, url.replace("http", "ws", 1) + "/api/v1/agents", token)
        runner = FuzzRunner(fuzz, "fzr-long")
        burst(fuzz, 200)  # warm-up: what the first connections allocate once
        time.sleep(2)
        rss_before = rss_mb(pid)
        progress(f"fuzzing the hub at {url} for {args.minutes:g} min (RSS "
                 f"{rss_before:.1f} MiB after warm-up) ...")
        end = time.monotonic() + args.minutes * 60
        rounds = connects = 0
        with Watch(url, token, HEALTHY) as watch:
            while time.monotonic() < end:
                round_seed = seed + rounds
                for what in ("channel", "jobs", "insert port"):
                    try:
                        if what == "channel":
                            channel_round(fuzz, round_seed, 10)
                        elif what == "jobs":
                            fuzz_jobs(runner, round_seed, 10, (Phase.generate, Phase.shrink))
                        else:
                            insert_round(port, round_seed, 40, fuzz)
                    except Exception as exc:  # a finding: record it and go on fuzzing
                        text = _describe(exc)
                        failures.append(f"{what} round, seed {round_seed}: {text[:3000]}")
                        progress(f"FAILURE in the {what} round (seed {round_seed}): "
                                 f"{text[:300]}")
                connects += args.burst
                welcomed = burst(fuzz, args.burst)
                rounds += 1
                progress(f"round {rounds}: {fuzz.cases} cases, {connects} connects "
                         f"({welcomed} welcomed this round), RSS {rss_mb(pid):.1f} MiB, "
                         f"{len(failures) + len(fuzz.failures)} failures")
            time.sleep(3)  # the last connections close; the hub settles
            rss_after = rss_mb(pid)
        downs = {name: sorted(watch.states[name] - {"up"}) for name in HEALTHY}
        logged = tracebacks(log)
        failures += fuzz.failures + [f"hub log: {line[:500]}" for line in logged]
        failures += [f"watch: {error}" for error in watch.errors]
        failures += [f"{name} was seen {states}" for name, states in downs.items() if states]
    print(f"seed: {seed}")
    print(f"minutes: {args.minutes:g}, rounds: {rounds}, cases: {fuzz.cases}, "
          f"connects and drops in bursts: {connects}")
    print(f"hub RSS: {rss_before:.1f} MiB before, {rss_after:.1f} MiB after "
          f"({rss_after - rss_before:+.1f} MiB)")
    for name in HEALTHY:
        print(f"{name}: states seen {sorted(watch.states[name])}, largest lateness "
              f"{watch.late_s[name] * 1000:.0f} ms past the 1 s interval "
              f"({watch.samples} samples)")
    print(f"failures: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
