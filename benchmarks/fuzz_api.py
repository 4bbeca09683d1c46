"""The long contract fuzz: schemathesis, every phase and check, against a real hub over
HTTPS with an engine, a driver, two runners and two standalone nodes (its document includes
the embedded node's), with the state every operation needs seeded as in the short run,
for as long as asked (>= 10 minutes by default), with any seed (printed, so a finding can
be replayed).

The short, fixed-seed run is ``tests/contract``; both use ``tests/contract/schemathesis.toml``
(whose every exclusion docs/reliability.md explains) and ``tests/contract/seeds.py``. Prints
schemathesis's summary, each operation that no answer reached with a 2xx, and exits with
schemathesis's code (or 1 if an operation had no 2xx).

Run: ``.venv/bin/python benchmarks/fuzz_api.py [--minutes M] [--seed N]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import long_run, progress, seed_of, sigterm_as_interrupt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "contract"))

from processes import AgentProcess, HubProcess  # noqa: E402
from seeds import seed as seed_state  # noqa: E402
from test_contract import fuzz, without_2xx  # noqa: E402


def main() -> int:
    parser = long_run(__doc__)
    args = parser.parse_args()
    seed = seed_of(args)
    sigterm_as_interrupt()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        hub = HubProcess(root / "hub", "--tls", "on", "--auth-failures", "1000000").start()
        agents: list[AgentProcess] = []

        def spawn(target: HubProcess, name: str, kind: str = "engine", token: str = "",
                  *extra: str) -> AgentProcess:
            agent = AgentProcess(target.url, kind, name, root / "agents" / name,
                                 token or target.enroll(kind), *extra)
            agents.append(agent)
            return agent

        try:
            state = seed_state(hub, spawn, root)
            progress(f"fuzzing the hub at {hub.url} for {args.minutes:g} min ...")
            run = fuzz(hub.url, hub.token, int(args.minutes * 60), root / "report", str(seed),
                       seeds=state, ca=hub.data_dir / "tls" / "server.crt")
            start = run.stdout.find("FAILURES")
            print(run.stdout[start - 40 if start >= 0 else run.stdout.find("SUMMARY") - 40:])
            document: dict[str, Any] = hub.client.get(f"{hub.url}/openapi.json").json()
            missing = without_2xx(root / "report", document)
            print(f"operations with no 2xx answer: {len(missing)}")
            for method, path in sorted(missing):
                print(f"  {method} {path}")
            for node in state.processes:
                node.close()
        finally:
            for agent in agents:
                agent.stop()
            hub.close()
    print(f"seed: {seed}")
    return run.returncode or (1 if missing else 0)


if __name__ == "__main__":
    sys.exit(main())
