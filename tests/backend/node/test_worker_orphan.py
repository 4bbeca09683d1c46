"""A flow worker whose node can never come back gives up instead of lingering."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from backend.node.worker import EXIT_ORPHANED

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def test_a_worker_whose_node_dir_was_deleted_exits_orphaned(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    run_dir = node_dir / "runs" / "fl_test"
    run_dir.mkdir(parents=True)
    (node_dir / "node.url").write_text(f"http://127.0.0.1:{_closed_port()}\n")
    launch = {"fid": "fl_test", "token": "t", "node_dir": str(node_dir), "cwd": str(run_dir),
              "orphan_timeout_s": 600}
    with subprocess.Popen([sys.executable, "-m", "backend.node.worker"], cwd=ROOT,
                          stdin=subprocess.PIPE, stderr=subprocess.PIPE) as worker:
        assert worker.stdin is not None and worker.stderr is not None
        worker.stdin.write((json.dumps(launch) + "\n").encode())
        worker.stdin.close()
        try:
            # Started (in its run dir) before the dir goes: a loaded machine takes a while
            # to import, and a dir deleted before the worker's chdir is another failure.
            deadline = time.monotonic() + 30
            while _cwd(worker.pid) != run_dir.resolve() and worker.poll() is None:
                assert time.monotonic() < deadline, "the worker never reached its run dir"
                time.sleep(0.02)
            time.sleep(0.3)
            assert worker.poll() is None  # the node is only unreachable: it keeps trying
            shutil.rmtree(node_dir)
            code = worker.wait(timeout=10)
            said = worker.stderr.read().decode()
            assert code == EXIT_ORPHANED, said
            assert "data dir" in said
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
