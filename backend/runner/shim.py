"""The shim between a runner and a job: ``python -m backend.runner.shim JOBDIR``.

The runner starts the shim in a new session (``start_new_session``), so a signal to the
runner's process group (Ctrl-C, ``systemctl stop`` with ``KillMode=process``, a dying
terminal) never reaches it or the job. The shim lowers its priority (``nice``; the job
inherits it), starts the job in its own process group (so the runner can stop the job
without stopping the shim), sends the job's output to ``output.log`` and, when the job
ends, writes ``exit.json`` with the exit code. The runner may die and restart any number
of times meanwhile: these files tell it how the job ended.

It imports only the standard library and runs as a script with ``python -S`` (no site
packages), so it starts in a few milliseconds: job pickup pays for its start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

NICE = 10


def write_atomic(path: Path, data: Any) -> None:
    """As :func:`backend.runner.journal.write_atomic` (kept here: the shim imports no
    package of ours)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    launch = json.loads((job_dir / "launch.json").read_text())
    try:
        os.nice(NICE)
    except OSError:
        pass
    started = time.time()
    env = dict(os.environ)
    env.update(launch.get("env") or {})
    with (job_dir / "output.log").open("ab") as out:
        try:
            child = subprocess.Popen(
                launch["argv"], cwd=launch.get("cwd") or None, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0,
                restore_signals=True,
            )
        except OSError as exc:
            out.write(f"cannot start {launch['argv'][0]!r}: {exc.strerror or exc}\n".encode())
            write_atomic(job_dir / "exit.json", {"exit_code": 127, "started": started,
                                                 "ended": time.time(),
                                                 "error": f"cannot start: {exc}"})
            return 0
        write_atomic(job_dir / "child.json", {"pid": child.pid, "started": started})
        code = child.wait()
    write_atomic(job_dir / "exit.json", {"exit_code": code, "started": started,
                                         "ended": time.time()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
