"""The chaos suite's short run: a seeded schedule of faults over a whole studio, checked.

``CONTROLROOM_CHAOS_SECONDS`` sets how long faults fall (30 s by default: the whole test
stays near 100 s of wall time), ``CONTROLROOM_CHAOS_SEED`` the schedule's seed (a fixed
one by default, so CI runs one schedule; ``random`` for a fresh one; it is printed first
and in any failure). ``benchmarks/chaos.py`` is the long
run of the same code. What is done and checked: ``tests/chaos/run.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from chaos.run import main_seed, run_chaos

SECONDS = float(os.environ.get("CONTROLROOM_CHAOS_SECONDS", "30"))
#: The schedule CI runs (any other seed: CONTROLROOM_CHAOS_SEED=N, or =random).
CI_SEED = 20261204
#: SIGSTOP, /proc/PID/status and ``/bin/sh`` jobs: Linux (where CI runs).
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@pytest.mark.timeout(SECONDS + 300)
def test_a_studio_under_seeded_faults_loses_doubles_and_leaks_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = main_seed(default=CI_SEED)

    def log(line: str) -> None:
        with capsys.disabled():
            print(line, file=sys.stderr, flush=True)

    report = run_chaos(tmp_path, SECONDS, seed, settle_s=90, log=log)
    log(report.summary())
    assert report.ok, report.summary()
    assert sum(report.faults.values()) >= SECONDS / 5, report.summary()
    assert report.counts["jobs succeeded"] > 0 and report.counts["renders done"] > 0, \
        report.summary()
