"""Tracks whose chains wait on another process: their blocks started early, results in order.

A chain with a fixed instance waits for a round trip per block (engine -> hub -> driver ->
hub -> engine), a few milliseconds on a busy machine. Done in line, that latency adds to
every block. :class:`RemoteLanes` takes it off the graph's path in two ways:

- **Overlap** (always): a lane's block is started before the graph fills its local rows,
  on a helper thread, so the trip runs while the rest of the block is computed.
- **Read-ahead** (offline renders, :meth:`RemoteLanes.read_ahead`): blocks are started
  before the graph asks for them. A chain whose only remote stage offers ``submit`` (the
  engine's driver proxy) is *pipelined*: the stages before it run here and the block is
  sent at once, up to :data:`AHEAD_BLOCKS` blocks in flight, so trips overlap one another
  and the driver, not the latency, sets the pace; the stages after it run as results come
  back, in block order. Any other lane reads one block ahead (its chain runs whole on a
  helper thread, and a chain must never run two blocks at once).

The samples are the graph's own: every stage sees the same blocks in the same order.
Only a parameter change reaches the instances of a lane read ahead a few blocks later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from backend.audio.blocks import FloatBlock

#: Blocks a pipelined lane keeps in flight during a render: enough to cover a round trip
#: several blocks long, few enough that a stop or a failure is noticed at once.
AHEAD_BLOCKS = 4


class Pending(Protocol):
    """A lane's block on its way."""

    def result(self) -> FloatBlock: ...

    def settle(self) -> None:
        """Wait until it is done, ignoring its outcome (before a seek or a close)."""


class _Threaded:
    """A whole chain running on a helper thread."""

    def __init__(self, future: Future[FloatBlock]) -> None:
        self._future = future

    def result(self) -> FloatBlock:
        return self._future.result()

    def settle(self) -> None:
        self._future.exception()


class _Sent:
    """A block sent to a remote stage; the later stages run when it is collected."""

    def __init__(self, collect: Callable[[], FloatBlock], settle: Callable[[], None]) -> None:
        self._collect = collect
        self._settle = settle

    def result(self) -> FloatBlock:
        return self._collect()

    def settle(self) -> None:
        self._settle()


class RemoteLanes:
    """The graph's remote tracks, by row: ``threaded`` runs a whole chain for ``n`` frames
    (blocking), ``send`` starts a pipelined one (None where a lane cannot be pipelined)."""

    def __init__(self, rows: list[int], threaded: Callable[[int, int], FloatBlock],
                 send: dict[int, Callable[[int], Pending]]) -> None:
        self.rows = rows
        self._threaded = threaded
        self._send = send
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: deque[tuple[int, list[tuple[int, Pending]]]] = deque()
        self._until: int | None = None
        # Every lane pipelined: several blocks ahead; otherwise one (a chain on a helper
        # thread may not run two blocks at once).
        self._depth = AHEAD_BLOCKS if rows and all(r in send for r in rows) else 1

    def read_ahead(self, until_frame: int | None) -> None:
        """Start blocks early up to ``until_frame`` (None: only overlap each block)."""
        self.drain()
        self._until = until_frame

    def take(self, n: int) -> list[tuple[int, Pending]]:
        """This block's lanes: started early, or now."""
        if not self.rows:
            return []
        if not self._ahead:
            return self._start(n, pipelined=False)
        frames, pending = self._ahead.popleft()
        if frames != n:
            for _, item in pending:
                item.settle()
            self.drain()
            raise RuntimeError(f"read-ahead computed {frames} frames, but {n} were asked "
                               f"for; ask for blocks up to the frame given to read_ahead()")
        return pending

    def top_up(self, next_frame: int, block_size: int) -> None:
        """After a block was collected: start the following ones, from ``next_frame``."""
        if self._until is None or not self.rows:
            return
        start = next_frame + sum(frames for frames, _ in self._ahead)
        while len(self._ahead) < self._depth and start < self._until:
            frames = min(block_size, self._until - start)
            self._ahead.append((frames, self._start(frames, pipelined=True)))
            start += frames

    def settle_threaded(self) -> None:
        """Wait for chains running on helper threads (no instance may change meanwhile)."""
        for _, pending in self._ahead:
            for _, item in pending:
                if isinstance(item, _Threaded):
                    item.settle()

    def drain(self) -> None:
        """Wait for every block on its way, and drop them."""
        while self._ahead:
            _, pending = self._ahead.popleft()
            for _, item in pending:
                item.settle()

    def close(self) -> None:
        self.drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _start(self, n: int, pipelined: bool) -> list[tuple[int, Pending]]:
        started: list[tuple[int, Pending]] = []
        for row in self.rows:
            send = self._send.get(row) if pipelined and self._depth > 1 else None
            if send is not None:
                started.append((row, send(n)))
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self.rows), thread_name_prefix="insert")
            started.append((row, _Threaded(self._pool.submit(self._threaded, row, n))))
        return started


def sent(collect: Callable[[], FloatBlock], settle: Callable[[], None]) -> Pending:
    """A pipelined block: ``collect`` waits for the remote result and runs the later
    stages; ``settle`` waits for the remote result only, ignoring its outcome."""
    return _Sent(collect, settle)
