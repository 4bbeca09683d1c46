"""Runs: launching workers, taking their events, brokering candidates, noticing their end.

The thin asyncio layer around the pure parts (:mod:`backend.node.fold` for state,
:mod:`backend.node.locks` for verdicts) and the durable store
(:mod:`backend.node.events`). Each run has one worker process; the worker connects back
over a WebSocket with the run's token (:mod:`backend.node.worker` explains why). A worker
may outlive this process: after a restart, :meth:`Runs.recover` folds every stored stream
again, and a run whose worker is still alive simply waits for it to reconnect; one whose
worker is gone is marked ``interrupted`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from starlette.websockets import WebSocket, WebSocketDisconnect

from backend import diskspace, program
from backend.node.events import EventStore
from backend.node.flows import Catalog
from backend.node.fold import FINAL_STATES, WORKER_EVENT_TYPES, RunEvent, RunState, fold
from backend.node.locks import Verdict
from backend.store import Store

log = logging.getLogger(__name__)
#: What a full-disk refusal calls the node's data dir.
ROOM = "the node's data dir"

STDERR_TAIL_BYTES = 2000
CANCEL_GRACE_S = 2.0
ORPHAN_POLL_S = 0.25


class RunError(Exception):
    """A request about a run cannot be served; ``status_code`` and ``detail`` say why."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class WorkerSettings:
    release_timeout_s: float = 60.0
    no_candidate_timeout_s: float = 3 * 3600.0
    orphan_timeout_s: float = 600.0


@dataclass
class Run:
    fid: str
    state: RunState
    token_digest: str
    pid: int | None = None
    pid_started: float | None = None
    ws: WebSocket | None = None
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiters: dict[str, asyncio.Future[Verdict]] = field(default_factory=dict)
    last_append: asyncio.Future[RunEvent] | None = None
    wseq_queued: int = 0
    final_queued: bool = False
    watcher: asyncio.Task[None] | None = None
    launch: dict[str, Any] = field(default_factory=dict)


def worker_command() -> list[str]:
    """How a worker is started: the worker module (``worker.py``) in a new process."""
    return program.command("backend.node.worker")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Runs:
    def __init__(
        self, store: Store, events: EventStore, catalog: Catalog, node_dir: Path,
        settings: WorkerSettings, hub_access: Callable[[], tuple[str, str, str, tuple[str, ...]]],
    ) -> None:
        self._store = store
        self.events = events
        self.catalog = catalog
        self.node_dir = node_dir
        self.settings = settings
        #: (node name, hub URL, token for the hub), read at each worker (re)connect.
        self._hub_access = hub_access
        self.runs: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        events.on_commit = self._committed

    # -- start-up ---------------------------------------------------------------------

    async def recover(self) -> None:
        """Fold every stored run; wait for live workers, mark the others interrupted."""
        for row in await self._store.query("SELECT * FROM runs ORDER BY created_at"):
            fid = row["fid"]
            state = fold(fid, await self.events.all(fid))
            run = Run(fid, state, row["token_digest"], row["pid"], row["pid_started"])
            self.runs[fid] = run
            if state.done:
                continue
            if state.has_result or state.error is not None:
                # The worker's last word (its result, or an error) was committed and
                # acknowledged, but the node stopped before the final it implies: the
                # worker may well have exited since, content. Write that final now, not
                # "interrupted" for a run that ended.
                error = state.error or {}
                await self._append(run, "final", {"state": "done"} if state.has_result else
                                   {"state": "error", "reason": error.get("message")})
                continue
            run.wseq_queued = await self.events.last_wseq(fid)
            launch = await self._launch_of(fid)
            run.launch = launch
            if self._alive(run):
                log.info("run %s: worker %s still alive; waiting for it", fid, run.pid)
                run.watcher = self._spawn(self._watch_orphan(run))
            else:
                await self._end(run, "interrupted",
                                f"worker process {run.pid} is gone (found when the node "
                                "started again)", tail=True)

    async def _launch_of(self, fid: str) -> dict[str, Any]:
        first = await self.events.since(fid, 0, 1)
        data = first[0].data if first else {}
        flow = self.catalog.get(str(data.get("flow", "")))
        return {"flow": data.get("flow"), "inputs": data.get("inputs"),
                "origin": flow.origin if flow else ""}

    def _alive(self, run: Run) -> bool:
        if run.pid is None:
            return False
        try:
            proc = psutil.Process(run.pid)
            if run.pid_started is not None and abs(proc.create_time() - run.pid_started) > 1:
                return False  # the pid was reused by another process
            return bool(proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    async def stop(self) -> None:
        """Leave workers running (they reconnect to the next node); stop our watchers."""
        for task in list(self._tasks):
            task.cancel()
        for run in self.runs.values():
            if run.ws is not None:
                with contextlib.suppress(Exception):
                    await run.ws.close(1001, "node shutting down")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- folding ----------------------------------------------------------------------

    def _committed(self, fid: str, event: RunEvent) -> None:
        run = self.runs.get(fid)
        if run is None:
            return
        for verdict in run.state.apply(event):
            waiter = run.waiters.pop(verdict.cid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(verdict)
        if event.type == "final":
            self._spawn(self._store.execute("UPDATE runs SET final = ? WHERE fid = ?",
                                            (run.state.final, fid)))

    def _append(self, run: Run, type: str, data: dict[str, Any],
                wseq: int | None = None) -> asyncio.Future[RunEvent]:
        if type == "final":
            run.final_queued = True
        future = self.events.append_nowait(run.fid, type, data, wseq)
        run.last_append = future
        return future

    # -- launching --------------------------------------------------------------------

    async def launch(
        self, flow_name: str, inputs: dict[str, Any] | None,
        parent: dict[str, Any] | None = None,
    ) -> Run:
        flow = self.catalog.get(flow_name)
        if flow is None:
            raise RunError(404, f"no flow {flow_name!r} on this node; GET /node/v1/flows "
                                f"lists them ({', '.join(self.catalog.names())})")
        if inputs is not None:
            from pydantic import ValidationError

            try:
                inputs = flow.inputs.model_validate(inputs).model_dump(mode="json")
            except ValidationError as exc:
                raise RunError(422, [
                    {"loc": ["body", "inputs", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ]) from None
        fid = "fl_" + secrets.token_hex(8)
        token = secrets.token_urlsafe(32)
        run = Run(fid, RunState(fid), _digest(token))
        run.launch = {"flow": flow.name, "inputs": inputs, "origin": flow.origin}
        self.runs[fid] = run
        now = time.time()
        await self._store.execute(
            "INSERT INTO runs (fid, flow, created_at, token_digest) VALUES (?, ?, ?, ?)",
            (fid, flow.name, now, run.token_digest),
        )
        await self._append(run, "status", {"state": "pending", "flow": flow.name,
                                           "inputs": inputs, "parent": parent})
        run_dir = self.node_dir / "runs" / fid
        run_dir.mkdir(parents=True, exist_ok=True)
        stderr = (run_dir / "stderr.log").open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *worker_command(), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                cwd=str(run_dir),
            )
        except OSError as exc:
            stderr.close()
            await self._end(run, "error", f"could not start a worker: {exc}")
            return run
        stderr.close()
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({
            "fid": fid, "token": token, "node_dir": str(self.node_dir),
            "orphan_timeout_s": self.settings.orphan_timeout_s, "cwd": str(run_dir),
        }).encode() + b"\n")
        with contextlib.suppress(OSError):
            await proc.stdin.drain()
        proc.stdin.close()
        run.pid = proc.pid
        with contextlib.suppress(psutil.Error):
            run.pid_started = psutil.Process(proc.pid).create_time()
        await self._store.execute("UPDATE runs SET pid = ?, pid_started = ? WHERE fid = ?",
                                  (run.pid, run.pid_started, fid))
        run.watcher = self._spawn(self._watch_child(run, proc))
        return run

    # -- a worker's end ---------------------------------------------------------------

    async def _watch_child(self, run: Run, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        await self._worker_gone(run, code)

    async def _watch_orphan(self, run: Run) -> None:
        """A worker started by an earlier node process: poll until it is gone."""
        while self._alive(run):  # noqa: ASYNC110 - no event tells us a non-child ended
            await asyncio.sleep(ORPHAN_POLL_S)
        await self._worker_gone(run, None)

    async def _worker_gone(self, run: Run, code: int | None) -> None:
        if run.last_append is not None:
            with contextlib.suppress(Exception):
                await run.last_append
        await asyncio.sleep(0.05)  # let a last ack-bound message on the socket be handled
        if run.final_queued or run.state.done:
            return
        if code is None:
            await self._end(run, "interrupted",
                            f"worker process {run.pid} ended while the node was not its "
                            "parent (after a node restart); its exit status is unknown",
                            tail=True)
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            await self._end(run, "interrupted",
                            f"worker process {run.pid} was killed by {name}", tail=True)
        elif code == 0:
            await self._end(run, "error", "worker exited without a result", tail=True)
        else:
            await self._end(run, "error", f"worker process {run.pid} exited with code {code}",
                            tail=True, exit_code=code)

    def stderr_tail(self, fid: str) -> str:
        path = self.node_dir / "runs" / fid / "stderr.log"
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - STDERR_TAIL_BYTES))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def _end(self, run: Run, state: str, reason: str, tail: bool = False,
                   exit_code: int | None = None) -> None:
        if run.final_queued:
            return
        if state in ("error", "interrupted"):
            error: dict[str, Any] = {"message": reason}
            if exit_code is not None:
                error["exit_code"] = exit_code
            if tail:
                error["stderr"] = await asyncio.to_thread(self.stderr_tail, run.fid)
            self._append(run, "error", error)
        await self._append(run, "final", {"state": state, "reason": reason})

    # -- cancelling -------------------------------------------------------------------

    async def cancel(self, fid: str) -> Run:
        run = self.get(fid)
        if run.final_queued or run.state.done:
            raise RunError(409, f"run {fid} is already {run.state.state}; nothing to cancel")
        # A cancel is recorded before the worker is stopped; on a full disk that record
        # would wait for room, so say so at once (507) and stop nothing yet.
        await asyncio.to_thread(diskspace.check, ROOM, self.node_dir)
        await self._append(run, "final", {"state": "cancelled",
                                          "reason": "cancelled by the operator"})
        if run.pid is not None and self._alive(run):
            self._spawn(self._stop_worker(run.pid))
        return run

    async def _stop_worker(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.Error:
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    # -- questions --------------------------------------------------------------------

    def get(self, fid: str) -> Run:
        run = self.runs.get(fid)
        if run is None:
            raise RunError(404, f"no run {fid!r} on this node")
        return run

    # -- candidates -------------------------------------------------------------------

    async def submit(self, fid: str, lid: str, value: Any) -> Verdict:
        """Persist a (schema-valid) candidate, hand it to the flow, wait for its verdict."""
        run = self.get(fid)
        lock = run.state.lock_book.locks[lid]
        cid = "cd_" + secrets.token_hex(6)
        waiter: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        run.waiters[cid] = waiter
        await self._append(run, "candidate", {"lid": lid, "cid": cid, "value": value})
        await self._send(run, {"t": "candidate", "lid": lid, "cid": cid, "value": value})
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), lock.release_timeout)
        except TimeoutError:
            raise RunError(504, {
                "detail": f"the flow gave no verdict on candidate {cid} within the lock's "
                          f"release-timeout ({lock.release_timeout:g} s); it stays pending "
                          "and the flow may still release or deny it",
                "lid": lid, "cid": cid,
            }) from None
        finally:
            if waiter.done() or run.state.done:
                run.waiters.pop(cid, None)

    async def _send(self, run: Run, message: dict[str, Any]) -> None:
        ws = run.ws
        if ws is None:
            return  # delivered from the store when the worker reconnects
        async with run.send_lock:
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps(message))

    # -- the worker channel -----------------------------------------------------------

    async def serve_worker(self, ws: WebSocket, fid: str) -> None:
        await ws.accept()
        try:
            hello = json.loads(await asyncio.wait_for(ws.receive_text(), 10))
        except (TimeoutError, WebSocketDisconnect, ValueError):
            await ws.close(4400, "expected hello")
            return
        run = self.runs.get(fid)
        token = str(hello.get("token", ""))
        if run is None or not hmac.compare_digest(_digest(token), run.token_digest):
            await ws.send_text(json.dumps({"t": "refuse", "reason": "unknown run or token"}))
            await ws.close(4401, "unknown run or wrong token")
            return
        if run.final_queued or run.state.done:
            await ws.send_text(json.dumps({"t": "refuse",
                                           "reason": f"run is {run.state.state}"}))
            await ws.close(4409, "run already ended")
            return
        if run.ws is not None:
            with contextlib.suppress(Exception):
                await run.ws.close(4409, "replaced by a newer connection")
        if run.last_append is not None:  # what was queued before this hello is committed
            with contextlib.suppress(Exception):
                await run.last_append
        name, hub_url, hub_token, hub_anchors = self._hub_access()
        run.ws = ws
        acks: asyncio.Queue[tuple[int, asyncio.Future[RunEvent]] | None] = asyncio.Queue()
        async with run.send_lock:
            await ws.send_text(json.dumps({
                "t": "welcome", "acked": run.wseq_queued,
                "launch": {**run.launch, "node": name, "hub_url": hub_url,
                           "hub_token": hub_token, "hub_anchors": list(hub_anchors),
                           "release_timeout": self.settings.release_timeout_s,
                           "no_candidate_timeout": self.settings.no_candidate_timeout_s},
                "candidates": [
                    {"lid": c.lid, "cid": c.cid, "value": c.value}
                    for c in run.state.lock_book.pending_candidates()
                ],
            }))
        acker = asyncio.create_task(self._ack_loop(run, ws, acks))
        try:
            while True:
                message = json.loads(await ws.receive_text())
                if message.get("t") != "event":
                    continue
                wseq = int(message["wseq"])
                if wseq <= run.wseq_queued:
                    continue  # resent after a reconnect but already taken
                run.wseq_queued = wseq
                kind, data = str(message.get("type")), message.get("data") or {}
                if run.final_queued or kind not in WORKER_EVENT_TYPES:
                    future: asyncio.Future[RunEvent] = asyncio.get_running_loop().create_future()
                    future.set_result(RunEvent(0, 0, kind, {}))
                    acks.put_nowait((wseq, future))
                    continue
                acks.put_nowait((wseq, self._append(run, kind, data, wseq)))
                if kind == "result":
                    self._append(run, "final", {"state": "done"})
                elif kind == "error":
                    self._append(run, "final", {"state": "error",
                                                "reason": data.get("message")})
        except (WebSocketDisconnect, ValueError, KeyError, RuntimeError):
            pass
        finally:
            acks.put_nowait(None)
            with contextlib.suppress(Exception):
                await acker
            if run.ws is ws:
                run.ws = None

    async def _ack_loop(
        self, run: Run, ws: WebSocket,
        acks: asyncio.Queue[tuple[int, asyncio.Future[RunEvent]] | None],
    ) -> None:
        while True:
            item = await acks.get()
            if item is None:
                return
            wseq, future = item
            await future
            while not acks.empty():  # coalesce: one ack for everything already committed
                nxt = acks.get_nowait()
                if nxt is None:
                    await self._ack(run, ws, wseq)
                    return
                wseq, future = nxt
                await future
            await self._ack(run, ws, wseq)

    async def _ack(self, run: Run, ws: WebSocket, wseq: int) -> None:
        async with run.send_lock:
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps({"t": "ack", "wseq": wseq}))


def is_final(state: str) -> bool:
    return state in FINAL_STATES
