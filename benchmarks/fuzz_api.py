"""The long contract fuzz: schemathesis, every phase and check, against a real hub with an
engine and a driver (its document includes the embedded node's), for as long as asked
(>= 10 minutes by default), with any seed (printed, so a finding can be replayed).

The short, fixed-seed run is ``tests/contract``; both use ``tests/contract/schemathesis.toml``,
whose every exclusion docs/reliability.md explains. Prints schemathesis's summary, each
operation that no answer reached with a 2xx, and exits with schemathesis's code.

Run: ``.venv/bin/python benchmarks/fuzz_api.py [--minutes M] [--seed N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from harness import Reaper, progress, sigterm_as_interrupt, spawn_agent, start_hub

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "contract"))

from test_contract import fuzz, without_2xx  # noqa: E402


async def hub_with_agents(reaper: Reaper) -> tuple[str, str]:
    hub = await start_hub(reaper, ["--auth-failures", "1000000"])
    async with hub.client() as client:
        for name, kind in (("e1", "engine"), ("d1", "driver")):
            await spawn_agent(reaper, hub, client, kind, name)
        for _ in range(300):
            states = {c["id"]: c["state"] for c in await client.components()}
            if states.get("e1") == states.get("d1") == "up":
                break
            await asyncio.sleep(0.1)
    return hub.url, hub.token


def document(url: str, token: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {token}"})
    return dict(answer.json())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    progress(f"seed {seed} (replay with --seed {seed})")
    sigterm_as_interrupt()
    code = 0
    with Reaper() as reaper, tempfile.TemporaryDirectory() as scratch:
        url, token = asyncio.run(hub_with_agents(reaper))
        progress(f"fuzzing the hub at {url} for {args.minutes:g} min ...")
        run = fuzz(url, token, int(args.minutes * 60), Path(scratch) / "hub", str(seed))
        start = run.stdout.find("FAILURES")
        print(run.stdout[start - 40 if start >= 0 else run.stdout.find("SUMMARY") - 40:])
        missing = without_2xx(Path(scratch) / "hub", document(url, token))
        print(f"operations with no 2xx answer: {len(missing)}")
        for method, path in sorted(missing):
            print(f"  {method} {path}")
        code = code or run.returncode
    print(f"seed: {seed}")
    return code


if __name__ == "__main__":
    sys.exit(main())
