"""Starting a job's shim, and finding one an earlier runner life started: real processes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from backend.runner.launch import adopt_shim, start_shim


def _offer(ledger: Path) -> dict[str, object]:
    return {"kind": "command", "payload": {
        "argv": ["/bin/sh", "-c", f"echo ran >> {ledger}; sleep 1"]}}


def test_a_shim_started_but_not_recorded_is_adopted_not_started_again(tmp_path: Path) -> None:
    """Found by the chaos suite: a runner SIGKILLed between starting a job's shim and
    writing ``shim.json`` came back, saw no shim, started another, and the job ran twice
    (the ledger the job appends to had two lines for one ``started`` report)."""
    job_dir = tmp_path / "jobs" / "j_1"
    job_dir.mkdir(parents=True)
    ledger = tmp_path / "ledger.txt"
    first = start_shim(_offer(ledger), job_dir)
    (job_dir / "shim.json").unlink()  # as a runner killed right after the start leaves it
    try:
        adopted = adopt_shim(job_dir)
        assert adopted is not None and adopted.process.pid == first.process.pid
        record = json.loads((job_dir / "shim.json").read_text())
        assert record["pid"] == first.process.pid
        deadline = time.monotonic() + 30
        while not (job_dir / "exit.json").exists():
            assert time.monotonic() < deadline, "the shim never ended"
            time.sleep(0.05)
        assert json.loads((job_dir / "exit.json").read_text())["exit_code"] == 0
        assert ledger.read_text() == "ran\n"
        assert adopt_shim(job_dir) is None  # ended: nothing left to adopt
    finally:
        if first.popen is not None and first.popen.poll() is None:
            first.popen.kill()
        if first.popen is not None:
            first.popen.wait(10)


def test_nothing_is_adopted_before_a_launch_or_when_no_shim_runs(tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs" / "j_2"
    job_dir.mkdir(parents=True)
    assert adopt_shim(job_dir) is None
    (job_dir / "launch.json").write_text(json.dumps({"argv": ["true"]}))
    assert adopt_shim(job_dir) is None
