"""Tracks rendered in other processes, into rows of a shared stack.

scipy's IIR loop holds the GIL, so threads cannot use a second core for a mix. A
:class:`TrackWorkers` starts one process per group of tracks (from a forkserver that has
the audio core already imported, so a start costs milliseconds, not a second). Each holds
the same :class:`~backend.audio.graph.Graph` built from the same spec, but computes only
its own rows, straight into shared memory; the main graph computes the rest, waits for the
workers, and mixes all rows in one product. The samples and the summation are exactly
those of a single process, so a render is bit-identical whatever the number of processes.

Per block the main process sends ``("block", n)`` and each worker answers
``("done", reports)``; parameter changes and seeks travel on the same pipe, so a worker
applies them before the block that follows, as the single-process graph would.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from backend.audio.errors import AudioError, InstanceError
from backend.audio.spec import TaskSpec

log = logging.getLogger(__name__)

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["backend.audio.graph", "scipy.signal"])
    return _CONTEXT


def share_rows(stack: np.ndarray) -> tuple[np.ndarray, shared_memory.SharedMemory]:
    """A copy of ``stack`` in shared memory, and the memory (kept alive by the caller)."""
    memory = shared_memory.SharedMemory(create=True, size=max(1, stack.nbytes))
    shared: np.ndarray = np.ndarray(stack.shape, dtype=stack.dtype, buffer=memory.buf)
    shared[:] = stack
    return shared, memory


class TrackWorkers:
    def __init__(self, spec: TaskSpec, media_dir: Path | None,
                 memory: shared_memory.SharedMemory, shape: tuple[int, ...],
                 groups: list[list[int]]) -> None:
        self._memory = memory
        self.reports: dict[str, dict[str, float]] = {}
        self._owner: dict[str, int] = {}
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []
        ctx = _context()
        spec_json = spec.model_dump_json()
        for index, rows in enumerate(groups):
            for row in rows:
                for iid in spec.tracks[row].chain:
                    self._owner[iid] = index
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_serve, daemon=True, name=f"tracks-{index}",
                args=(theirs, spec_json, str(media_dir) if media_dir else None, memory.name,
                      shape, rows),
            )
            proc.start()
            theirs.close()
            self._pipes.append(ours)
            self._procs.append(proc)
        for pipe in self._pipes:  # each worker says it is ready (or why not)
            self._receive(pipe)
        log.info("tracks %s rendered by %d other process(es)",
                 [spec.tracks[row].id for rows in groups for row in rows], len(groups))

    def hosts(self, instance_id: str) -> bool:
        return instance_id in self._owner

    def start(self, n: int) -> None:
        for pipe in self._pipes:
            pipe.send(("block", n))

    def finish(self) -> None:
        for pipe in self._pipes:
            self.reports.update(self._receive(pipe))

    def set_params(self, instance_id: str, params: dict[str, Any]) -> None:
        self._pipes[self._owner[instance_id]].send(("params", instance_id, params))

    def seek(self, frame: int) -> None:
        for pipe in self._pipes:
            pipe.send(("seek", frame))
        for pipe in self._pipes:
            self._receive(pipe)

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in self._pipes:
            pipe.close()
        self._memory.close()
        self._memory.unlink()

    def _receive(self, pipe: multiprocessing.connection.Connection) -> dict[str, Any]:
        try:
            kind, payload = pipe.recv()
        except EOFError:
            raise AudioError("a track worker process ended unexpectedly") from None
        if kind == "error":
            iid, reason = payload
            if iid:
                raise InstanceError(iid, reason)
            raise AudioError(reason)
        result: dict[str, Any] = payload
        return result


def _serve(pipe: multiprocessing.connection.Connection, spec_json: str,
           media_dir: str | None, memory_name: str, shape: tuple[int, ...],
           rows: list[int]) -> None:
    """A worker: build the graph, then fill its rows for each block until told to stop."""
    from backend.audio.graph import Graph

    # A forkserver child shares its creator's resource tracker, so attaching registers
    # nothing new, and the creator's unlink is the only clean-up.
    memory = shared_memory.SharedMemory(name=memory_name)
    graph: Graph | None = None
    stack: np.ndarray | None = None
    try:
        stack = np.ndarray(shape, dtype=np.float64, buffer=memory.buf)
        spec = TaskSpec.model_validate_json(spec_json)
        graph = Graph(spec, media_dir=Path(media_dir) if media_dir else None, stack=stack)
        graph._rows = rows
        mine = {iid for row in rows for iid in spec.tracks[row].chain}
        pipe.send(("ready", {}))
        while True:
            message = pipe.recv()
            if message[0] == "stop":
                break
            if message[0] == "params":
                graph.set_instance_params(message[1], message[2])
            elif message[0] == "seek":
                graph.seek(message[1])
                pipe.send(("done", {}))
            elif message[0] == "block":
                try:
                    graph.fill_rows(message[1])
                except InstanceError as exc:
                    pipe.send(("error", (exc.instance_id, exc.reason)))
                    continue
                except (AudioError, OSError, ValueError) as exc:
                    pipe.send(("error", ("", str(exc))))
                    continue
                pipe.send(("done", {iid: graph.instances[iid].report() for iid in mine}))
    except (AudioError, OSError, ValueError) as exc:
        pipe.send(("error", ("", f"track worker could not start: {exc}")))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        if graph is not None:
            graph.close()
        graph = stack = None  # no view of the buffer may outlive it
        memory.close()


def prewarm() -> None:
    """Start the forkserver now, so the first split render does not wait for its imports."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()
