"""A ``render`` job's process: ``python -m backend.runner.render_job JOBDIR``.

Renders the payload's audio task spec with the audio core (dynamic instances only: a
runner has no instance drivers) into ``JOBDIR/artifacts/<name>`` (or, for a part of a farm
render, the payload's ``chunks`` into ``chunk-<i>.f64`` each), printing ``progress F``
lines the runner reports like any command job's. Sources named by hash are read from the
runner's media cache, as ``media.json`` (written by the runner before it started this
process) maps them.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from backend.runner.journal import MEDIA_FILE, read_json


def main(argv: list[str]) -> int:
    from backend.audio import (
        Graph,
        media_hashes,
        offline_block,
        parse_task_spec,
        render,
        with_media_paths,
    )
    from backend.audio.errors import AudioError
    from backend.audio.farm import render_part

    job_dir = Path(argv[0])
    offer = read_json(job_dir / "payload.json")
    payload = offer["payload"]
    media_dir = Path(offer.get("media_dir") or ".")
    spec = parse_task_spec(payload["spec"])
    paths = (read_json(job_dir / MEDIA_FILE) or {}).get("paths", {})
    if all(sha in paths for sha in media_hashes(spec)):
        spec = with_media_paths(spec, paths)  # else the graph names the missing one
    target = job_dir / "artifacts" / payload.get("name", "render.wav")
    target.parent.mkdir(parents=True, exist_ok=True)
    last = [-1.0]

    def progress(fraction: float) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            print(f"progress {fraction:.3f}", flush=True)

    segment = tuple(payload["segment"]) if payload.get("segment") else None
    # The runner cancels a job with SIGTERM: stop at the next block, so the partial files
    # are deleted and nothing half-written is left for the artifacts upload.
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        with Graph(spec, media_dir=media_dir, block_frames=offline_block(spec)) as graph:
            if payload.get("chunks") is not None:  # a part of a farm render
                part = render_part(graph, payload["chunks"], target.parent, progress,
                                   cancel, segment=segment)
                if part.status == "cancelled":
                    print("render cancelled; its partial files are deleted", flush=True)
                    return 143
                print(f"rendered chunks {', '.join(map(str, sorted(payload['chunks'])))} "
                      f"({part.frames} frames)", flush=True)
                return 0
            result = render(graph, target, payload.get("format", "wav24"), progress=progress,
                            cancel=cancel, segment=segment)
            if result.status == "cancelled":
                print("render cancelled; its partial file is deleted", flush=True)
                return 143
    except (AudioError, OSError, ValueError) as exc:
        print(f"render failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"rendered {result.duration_s:.2f} s to {target.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
