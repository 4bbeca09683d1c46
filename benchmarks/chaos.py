"""The long chaos run: the studio of ``tests/chaos`` under seeded faults for many minutes.

The same code as the short run in CI (``tests/chaos/run.py``): a hub, an engine, two
drivers, two runners, a standalone node and the embedded one, the agents behind a TCP
proxy; jobs, renders and flows waiting on locks all at once while processes are
SIGKILLed and SIGSTOPped, the hub is killed and restarted, and connections are dropped,
delayed and left half-open. Prints the seed first (replay with ``--seed``), then the
faults by kind, the invariant counts, and every lost, duplicated or unexpected finding;
exits 1 if there was any.

Run: ``.venv/bin/python benchmarks/chaos.py [--minutes M] [--seed N] [--json] [--keep]``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from harness import long_run, progress, seed_of, sigterm_as_interrupt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # first: ``chaos`` is then tests/chaos, not this file

from chaos.run import run_chaos  # noqa: E402


def main() -> int:
    parser = long_run(__doc__)
    parser.add_argument("--settle", type=float, default=180.0,
                        help="seconds the work may take to end once the faults stop")
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    seed = seed_of(args)
    sigterm_as_interrupt()
    root = Path(tempfile.mkdtemp(prefix="controlroom-chaos-"))
    try:
        report = run_chaos(root, args.minutes * 60, seed, settle_s=args.settle, log=progress)
    finally:
        if args.keep:
            progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
