"""Groups of tracks rendered in other processes, into partial buses in shared memory.

scipy's IIR loop holds the GIL, so threads cannot use a second core for a mix. A
:class:`TrackWorkers` (the graph's ``workers=`` factory: the graph only knows the
protocol it implements, so this module may import the graph and not the reverse) starts
one process per set of mix groups (from a forkserver that has the audio core already
imported, so a start costs milliseconds, not a second). Each holds
the same :class:`~backend.audio.graph.Graph` built from the same spec, but computes only
its own groups' rows and mixes each group into its partial bus, straight into shared
memory; the main graph does the rest, waits for the workers, and sums the partials in
group order. The samples and the summation are exactly those of a single process, so a
render is bit-identical whatever the number of processes.

Per block the main process sends ``("block", n, slot)`` and each worker answers
``("done", reports)``; parameter changes and seeks travel on the same pipe, so a worker
applies them before the block that follows, as the single-process graph would.

The partial buses have two slots. During a render the main process asks for the next
block as soon as it starts on the current one (:meth:`TrackWorkers.send_block`, at most
:data:`SLOTS` on their way), so the workers mix block *k + 1* into one slot while the main
process mixes its own groups, sums, meters and writes block *k* from the other, instead of
waiting for it. Measured on the 2-core reference machine (32 tracks, gain and pan only),
the worker had been idle for a third of the render.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import sys
import threading
from collections import deque
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from backend.audio.errors import AudioError, InstanceError
from backend.audio.graph import Graph
from backend.audio.spec import TaskSpec

log = logging.getLogger(__name__)

_CONTEXT: Any = None

#: Partial-bus slots: blocks the workers may be asked for ahead of the main process.
SLOTS = 2

Worker = tuple[Any, multiprocessing.connection.Connection]  # a process and our pipe end

# Idle workers, forked and waiting for a job (``prewarm``); after a render a worker goes
# back to waiting. A split render then starts without waiting for a fork: measured on the
# 2-core reference machine, starting a worker from the forkserver took 28 ms of a 220-ms
# gain-and-pan render (32 tracks x 60 s).
_idle: list[Worker] = []
_idle_lock = threading.Lock()
_idle_wanted = 0


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(_preload())
    return _CONTEXT


def _preload() -> list[str]:
    """What the forkserver imports once, so that a worker starts in milliseconds.

    Besides the audio core, the program's main module: every child re-runs it as
    ``__mp_main__`` before it runs its target (multiprocessing's ``spawn.prepare``), and
    for ``python -m app.main`` that imported the hub, FastAPI and uvicorn again in each
    worker: 0.47 s per render, measured in the engine. With the module imported in the
    forkserver, re-running it costs only its own lines (its ``main()`` is guarded).
    """
    modules = ["backend.audio.workers", "scipy.signal"]  # the workers import the graph
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name and name != "__main__" and not name.endswith(".__main__"):
        modules.append(name)
    return modules


def share_rows(rows: np.ndarray) -> tuple[np.ndarray, shared_memory.SharedMemory]:
    """A copy of ``rows`` in shared memory, and the memory (kept alive by the caller)."""
    memory = shared_memory.SharedMemory(create=True, size=max(1, rows.nbytes))
    shared: np.ndarray = np.ndarray(rows.shape, dtype=rows.dtype, buffer=memory.buf)
    shared[:] = rows
    return shared, memory


class TrackWorkers:
    """A split graph's other processes (the :class:`~backend.audio.graph.Workers` protocol).

    ``slots`` are the partial buses in shared memory, one slot per block on its way; the
    graph reads them and must drop its views of them before :meth:`close`.
    """

    def __init__(self, spec: TaskSpec, media_dir: Path | None, partials: tuple[int, ...],
                 rows: list[list[int]], groups: list[list[int]]) -> None:
        """One process per entry of ``groups`` (mix groups), computing those ``rows``, into
        :data:`SLOTS` slots of partial buses of shape ``partials``."""
        self.slots, memory = share_rows(np.zeros((SLOTS, *partials)))
        shape = self.slots.shape
        self._memory = memory
        self._slots = shape[0]
        self._sent: deque[tuple[int, int]] = deque()  # (frames, slot) of blocks on their way
        self._next_slot = 0
        self.reports: dict[str, dict[str, float]] = {}
        self._owner: dict[str, int] = {}
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []
        spec_json = spec.model_dump_json()
        for index, (tracks, mine) in enumerate(zip(rows, groups, strict=True)):
            for row in tracks:
                for iid in spec.tracks[row].chain:
                    self._owner[iid] = index
            proc, pipe = _take_worker()
            pipe.send(("job", spec_json, str(media_dir) if media_dir else None, memory.name,
                       shape, mine))
            self._pipes.append(pipe)
            self._procs.append(proc)
        self._tracks = [spec.tracks[row].id for tracks in rows for row in tracks]

    def wait_ready(self) -> None:
        """Wait until every worker has built its graph (or say why one could not)."""
        for pipe in self._pipes:
            self._receive(pipe)
        log.info("tracks %s rendered by %d other process(es)", self._tracks, len(self._pipes))

    def hosts(self, instance_id: str) -> bool:
        return instance_id in self._owner

    @property
    def on_their_way(self) -> list[int]:
        """The frame counts of the blocks asked for and not yet collected, oldest first."""
        return [frames for frames, _ in self._sent]

    @property
    def current_slot(self) -> int:
        """The slot of the oldest block on its way (the one the main process is on)."""
        return self._sent[0][1]

    def send_block(self, n: int) -> None:
        """Ask every worker for its groups of the next ``n`` frames, into the next slot."""
        if len(self._sent) >= self._slots:
            raise RuntimeError("every partial-bus slot is in use; collect a block first")
        slot, self._next_slot = self._next_slot, (self._next_slot + 1) % self._slots
        for pipe in self._pipes:
            pipe.send(("block", n, slot))
        self._sent.append((n, slot))

    def finish(self) -> int:
        """Wait for the oldest block asked for; its slot of the partial buses."""
        _, slot = self._sent.popleft()
        for pipe in self._pipes:
            self.reports.update(self._receive(pipe))
        return slot

    def drain(self) -> None:
        """Collect every block on its way, ignoring their errors (before a seek or a stop)."""
        while self._sent:
            try:
                self.finish()
            except AudioError:
                pass

    def set_params(self, instance_id: str, params: dict[str, Any]) -> None:
        self._pipes[self._owner[instance_id]].send(("params", instance_id, params))

    def seek(self, frame: int) -> None:
        self.drain()
        for pipe in self._pipes:
            pipe.send(("seek", frame))
        for pipe in self._pipes:
            self._receive(pipe)

    def close(self) -> None:
        """Stop the workers' jobs; each one that stops cleanly waits for the next render
        (up to :func:`prewarm`'s count), the others end."""
        for pipe in self._pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                pass
        for proc, pipe in zip(self._procs, self._pipes, strict=True):
            if _stopped(pipe) and _keep_idle((proc, pipe)):
                continue
            pipe.close()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.slots = np.zeros(self.slots.shape)  # no view of the buffer may outlive it
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


def _start_worker() -> Worker:
    ctx = _context()
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(theirs,), daemon=True, name="tracks")
    proc.start()
    theirs.close()
    return proc, ours


def _take_worker() -> Worker:
    """An idle worker if one is ready, else a new one."""
    with _idle_lock:
        while _idle:
            proc, pipe = _idle.pop()
            if proc.is_alive():
                return proc, pipe
            pipe.close()
    return _start_worker()


def _refill() -> None:
    """Start idle workers until :func:`prewarm`'s count is ready."""
    while True:
        with _idle_lock:
            if len(_idle) >= _idle_wanted:
                return
        worker = _start_worker()
        if not _keep_idle(worker):
            worker[1].close()
            return


def _keep_idle(worker: Worker) -> bool:
    """Put a worker with no job among the idle ones, if fewer than wanted are."""
    with _idle_lock:
        if len(_idle) < _idle_wanted and worker[0].is_alive():
            _idle.append(worker)
            return True
    return False


def _stopped(pipe: multiprocessing.connection.Connection) -> bool:
    """Wait (briefly) for a worker to say its job stopped, past any block it still answers."""
    try:
        while pipe.poll(5):
            if pipe.recv()[0] == "stopped":
                return True
    except (EOFError, OSError):
        pass
    return False


def _serve(pipe: multiprocessing.connection.Connection) -> None:
    """A worker: run jobs (renders) one after another until the pipe closes. Reusing the
    process keeps the next render from waiting for a fork (and its imports)."""
    while True:
        try:
            job = pipe.recv()
        except (EOFError, KeyboardInterrupt):
            return  # the program ended, or wants no more idle workers
        if job[0] != "job":
            return
        if not _run_job(pipe, *job[1:]):
            return
        pipe.send(("stopped", {}))


def _run_job(pipe: multiprocessing.connection.Connection, spec_json: str,
             media_dir: str | None, memory_name: str, shape: tuple[int, ...],
             groups: list[int]) -> bool:
    """Build the graph and mix its groups for each block until told to stop; False when
    the job could not start or the main process went away (this worker then ends)."""
    # A forkserver child shares its creator's resource tracker, so attaching registers
    # nothing new, and the creator's unlink is the only clean-up.
    memory: shared_memory.SharedMemory | None = None
    graph: Graph | None = None
    partials: np.ndarray | None = None
    try:
        memory = shared_memory.SharedMemory(name=memory_name)
        partials = np.ndarray(shape, dtype=np.float64, buffer=memory.buf)
        spec = TaskSpec.model_validate_json(spec_json)
        graph = Graph(spec, media_dir=Path(media_dir) if media_dir else None,
                      partials=partials[0], block_frames=shape[-1] // 2)
        graph.take_groups(groups)
        mine = {iid for row in graph.rows for iid in spec.tracks[row].chain}
        pipe.send(("ready", {}))
        while True:
            message = pipe.recv()
            if message[0] == "stop":
                return True
            if message[0] == "params":
                graph.set_instance_params(message[1], message[2])
            elif message[0] == "seek":
                graph.seek(message[1])
                pipe.send(("done", {}))
            elif message[0] == "block":
                try:
                    graph.mix_into(partials[message[2]])
                    graph.fill_rows(message[1])
                    graph.mix_groups(message[1])
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
        graph = partials = None  # no view of the buffer may outlive it
        if memory is not None:
            memory.close()
    return False


def prewarm(idle: int = 1) -> None:
    """Start the forkserver now, so the first split render does not wait for its imports,
    and keep ``idle`` workers ready for the next renders (one per extra process a render
    uses: ``render_processes - 1``); a worker goes back to waiting after its render."""
    from multiprocessing import forkserver

    global _idle_wanted
    _context()
    forkserver.ensure_running()
    _idle_wanted = max(0, idle)
    _refill()
