"""Fixed instances seen from the engine: a proxy that sends each block to its driver.

The graph runs on a worker thread and calls ``process`` one block at a time, in a fixed
order. :class:`RemoteInstance` turns that call into an ``insert`` frame to the driver and
blocks the worker thread until the ``insert_result`` comes back, so the graph code is the
same for a dynamic and a fixed instance and the samples are identical (the driver runs the
same model code on the same float64 blocks).

A frame goes over the driver's direct link (``insert_link.py``) when the hub handed one
out for the run and the engine can connect to it, and through the hub otherwise (each
driver on its own: one on another network does not hold back the rest).

:class:`InsertRouter` numbers the blocks of each run, matches results to the waiting
threads, and fails them all at once when the run is stopped, a driver goes down or its
link breaks, so a worker thread never waits forever.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from typing import Any

import numpy as np
import numpy.typing as npt

from backend.audio.errors import InstanceError
from backend.engine.insert_link import DirectLink
from backend.protocol import frames
from backend.protocol.tasks import InsertLink

log = logging.getLogger(__name__)

SendBytes = Callable[[bytes], Awaitable[bool]]
Result = tuple[np.ndarray, dict[str, Any]]  # a processed block and the instance's report

_run_ids = itertools.count(1)


class InsertRouter:
    def __init__(self, loop: asyncio.AbstractEventLoop, send: SendBytes,
                 timeout_s: float = 2.0, engine: str = "engine") -> None:
        self._loop = loop
        self._send = send
        self._engine = engine
        # Direct links: those the hub offered for the latest run, and those opened (None:
        # that offer could not be used, so the driver's blocks go through the hub).
        self._offered: dict[str, InsertLink] = {}
        self._opened: dict[str, tuple[InsertLink, DirectLink | None]] = {}
        self._links_lock = threading.Lock()
        # Frames leave through one sender task, strictly in the order they were queued
        # (a render keeps several blocks of one instance on their way), and a burst of
        # frames from the graph's thread wakes the loop once rather than once per frame.
        self._outbox: deque[tuple[bytes, tuple[int, str, int]]] = deque()
        self._outbox_lock = threading.Lock()
        self._sender: asyncio.Task[None] | None = None
        self.timeout_s = timeout_s
        #: Blocks on their way, by (run, instance, seq): the future a thread waits on, and
        #: the driver it went to (so a lost link fails its own blocks only).
        self._pending: dict[tuple[int, str, int], tuple[Future[Result], str]] = {}
        #: Runs that were stopped: a block still on its way in fails at once instead of
        #: waiting out the timeout for a driver that is gone.
        self._ended: dict[int, str] = {}

    def new_run(self) -> int:
        return next(_run_ids)

    def use_links(self, offered: Mapping[str, InsertLink]) -> None:
        """The drivers' direct links for a run that starts (from the hub's play or render
        message), added to those of runs still going; a link already open to the same
        place with the same key stays open."""
        with self._links_lock:
            self._offered.update(offered)

    def links(self) -> dict[str, str]:
        """How each driver's blocks travel: ``direct`` or ``hub`` (for logs and tests)."""
        with self._links_lock:
            return {driver: "direct" if opened is not None and opened.alive else "hub"
                    for driver, (_, opened) in self._opened.items()}

    def close(self) -> None:
        """Close every direct link (the next run opens those the hub offers it then)."""
        with self._links_lock:
            opened, self._opened = self._opened, {}
            self._offered = {}
        for _, link in opened.values():
            if link is not None:
                link.close()

    def send(self, task_id: str, run: int, driver: str, iid: str, seq: int, reset: bool,
             block: npt.NDArray[Any]) -> Callable[[], Result]:
        """From the graph's thread: send one block now; call the result to wait for it.

        Blocks of one instance may be sent before earlier ones come back: frames leave in
        the order they are sent, the hub relays them in order and the driver processes
        them in order, so a render keeps several on their way (``lanes.py``).
        """
        if run in self._ended:
            raise InstanceError(iid, self._ended[run])
        future: Future[Result] = Future()
        key = (run, iid, seq)
        self._pending[key] = (future, driver)
        block64 = np.ascontiguousarray(block, dtype=np.float64)
        header = {"k": "insert", "task": task_id, "iid": iid, "driver": driver, "run": run,
                  "seq": seq, "reset": reset, "ch": block64.shape[1], "dtype": "float64"}
        frame = frames.pack(header, frames.block_bytes(block64))
        link = self._link_to(driver)
        if link is not None:
            try:
                link.send(frame)
            except OSError as exc:
                self._forget(key)
                raise InstanceError(iid, f"{driver} went down (its insert link failed: "
                                         f"{exc})") from None
        else:
            with self._outbox_lock:
                wake = not self._outbox
                self._outbox.append((frame, key))
            if wake:
                self._loop.call_soon_threadsafe(self._start_sender)

        def wait() -> Result:
            try:
                return future.result(self.timeout_s)
            except TimeoutError:
                raise InstanceError(
                    iid, f"{driver} did not process block {seq} within {self.timeout_s:g} s"
                ) from None
            finally:
                self._forget(key)

        return wait

    def _forget(self, key: tuple[int, str, int]) -> None:
        self._pending.pop(key, None)

    def _link_to(self, driver: str) -> DirectLink | None:
        """The open link to ``driver``, opening the offered one first if need be (on the
        graph's thread: connecting takes a round trip); None: through the hub."""
        with self._links_lock:
            offered = self._offered.get(driver)
            if offered is None:
                return None
            current = self._opened.get(driver)
            if current is not None and current[0] == offered and (
                    current[1] is None or current[1].alive):
                return current[1]
            if current is not None and current[1] is not None:
                current[1].close()
            link: DirectLink | None
            try:
                link = DirectLink(driver, offered, self._engine, self.result,
                                  lambda reason: self._link_lost(driver, reason))
                log.info("inserts on %s go over its direct link (%s:%d%s)", driver,
                         offered.host, offered.port, ", sealed" if offered.sealed else "")
            except OSError as exc:
                link = None
                log.warning("cannot use %s's direct insert link at %s:%d (%s); its blocks go "
                            "through the hub", driver, offered.host, offered.port, exc)
            self._opened[driver] = (offered, link)
            return link

    def _link_lost(self, driver: str, reason: str) -> None:
        """From a link's reader thread: fail every block still waiting on that driver."""
        for key in [k for k, (_, d) in list(self._pending.items()) if d == driver]:
            self._fail(key, f"{driver} went down (its insert link closed: {reason})")

    def _start_sender(self) -> None:
        """On the loop: make sure a sender task is draining the outbox."""
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._drain_outbox(), name="inserts-out")
            self._sender.add_done_callback(
                lambda t: t.exception() if not t.cancelled() else None)

    async def _drain_outbox(self) -> None:
        while True:
            with self._outbox_lock:
                if not self._outbox:
                    return
                frame, key = self._outbox.popleft()
            if not await self._send(frame):
                self._fail(key, "the hub connection is down")

    def result(self, header: Mapping[str, Any], payload: memoryview) -> None:
        """A processed block came back (on the loop from the hub, or on a link's thread)."""
        key = (int(header["run"]), str(header["iid"]), int(header["seq"]))
        pending = self._pending.get(key)
        if pending is None or pending[0].done():
            return
        future = pending[0]
        try:
            if "error" in header:
                future.set_exception(InstanceError(str(header["iid"]), str(header["error"])))
                return
            block = frames.block_from(payload, str(header["dtype"]), int(header["ch"])).copy()
            future.set_result((block, dict(header.get("report") or {})))
        except InvalidStateError:
            pass  # failed meanwhile (the run stopped, the driver went down)

    def fail_run(self, run: int, reason: str) -> None:
        self._ended[run] = reason
        for key in [k for k in list(self._pending) if k[0] == run]:
            self._fail(key, reason)

    def fail_all(self, reason: str) -> None:
        for key in list(self._pending):
            self._fail(key, reason)

    def _fail(self, key: tuple[int, str, int], reason: str) -> None:
        pending = self._pending.get(key)
        if pending is not None and not pending[0].done():
            try:
                pending[0].set_exception(InstanceError(key[1], reason))
            except InvalidStateError:
                pass  # its result arrived meanwhile


class RemoteInstance:
    """An :class:`~backend.audio.instance.Instance` whose processing happens on a driver."""

    remote = True  # the graph overlaps its round trips with other work

    def __init__(self, router: InsertRouter, task_id: str, run: int, driver: str, iid: str,
                 params: Mapping[str, Any]) -> None:
        self._router = router
        self._task_id = task_id
        self._run = run
        self.driver = driver
        self.iid = iid
        self._params = dict(params)
        self._seq = 0
        self._reset = True
        self._report: dict[str, float] = {}

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def process(self, block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return self.submit(block)()

    def submit(self, block: npt.NDArray[Any]) -> Callable[[], npt.NDArray[np.float64]]:
        """Send the block now; the returned call waits for the processed one. Results are
        to be collected in the order the blocks were submitted."""
        reset, self._reset = self._reset, False
        self._seq += 1
        wait = self._router.send(self._task_id, self._run, self.driver, self.iid,
                                 self._seq, reset, block)

        def collect() -> npt.NDArray[np.float64]:
            out, report = wait()
            self._report = {k: float(v) for k, v in report.items()}
            return out

        return collect

    def set_params(self, params: Mapping[str, Any]) -> None:
        """The hub sends parameter changes to the driver itself; remember them for display."""
        self._params.update(params)

    def report(self) -> dict[str, float]:
        return dict(self._report)

    def reset(self) -> None:
        self._reset = True
