"""The worker process: runs one flow and streams its events to the node.

Started by the node as ``python -m backend.node.worker`` in its **own process session**
(so a signal to the node's process group, or the node's death, does not take it along),
with one JSON line on stdin: the run's id, its worker token and the node's data dir. It
then talks to the node over a WebSocket at ``/node/v1/workers/{fid}``:

- ``hello {fid, token, pid}`` -> ``welcome {acked, launch, candidates}``: what to run, and
  how far the node has committed this worker's events;
- ``event {wseq, type, data}`` for each event, pipelined; the node answers ``ack {wseq}``
  once it is committed, and the worker forgets it;
- ``candidate {lid, cid, value}`` from the node for an open lock.

If the connection drops (the node restarts, or was SIGKILLed), the worker keeps the flow
running and its unacknowledged events in memory, re-reads ``<node-dir>/node.url`` (the
node may come back on another port) and reconnects with backoff; the welcome's ``acked``
tells it what to resend, and candidates it already has are recognised by their ``cid``.
So a run survives a node restart with nothing lost or doubled. A worker that cannot reach
its node for ``orphan_timeout_s``, or finds the node's data dir deleted, gives up (exit
3); the node then marks the run interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from backend.client import HubClient
from backend.node.context import Candidate, Context
from backend.node.loader import resolve_flow
from backend.tls import Trust

log = logging.getLogger("controlroom.worker")

EXIT_ORPHANED = 3
EXIT_REFUSED = 4


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@dataclass
class Worker:
    fid: str
    token: str
    node_dir: Path
    orphan_timeout_s: float = 600.0
    wseq: int = 0
    acked: int = 0
    outbox: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    locks: dict[str, asyncio.Queue[Candidate]] = field(default_factory=dict)
    seen_cids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._sent = 0
        self._flow_task: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self._hub: HubClient | None = None

    # -- the Emitter protocol (what Context calls) -------------------------------------

    def emit(self, type: str, data: dict[str, Any]) -> None:
        self.wseq += 1
        self.outbox.append((self.wseq, type, data))
        self._wake.set()

    def open_lock(self, lid: str) -> asyncio.Queue[Candidate]:
        queue: asyncio.Queue[Candidate] = asyncio.Queue()
        self.locks[lid] = queue
        return queue

    def close_lock(self, lid: str) -> None:
        self.locks.pop(lid, None)

    # -- the connection to the node ---------------------------------------------------

    def _node_url(self) -> str:
        base = (self.node_dir / "node.url").read_text().strip()
        return "ws" + base.removeprefix("http") + f"/node/v1/workers/{self.fid}"

    def _node_tls(self, url: str) -> ssl.SSLContext | None:
        """The node's certificate (``node.crt``, written beside ``node.url``) as the one
        anchor, when the node serves TLS."""
        if not url.startswith("wss:"):
            return None
        return Trust(((self.node_dir / "node.crt").read_text(),)).context()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._cancel)
        loop.add_signal_handler(signal.SIGINT, self._cancel)
        delay = 0.05
        lost_since = loop.time()
        while True:
            try:
                url = self._node_url()
                async with connect(url, max_size=16 * 2**20, open_timeout=5, close_timeout=1,
                                   ping_interval=10, ping_timeout=10,
                                   ssl=self._node_tls(url)) as ws:
                    delay = 0.05
                    if await self._session(ws):
                        return 0
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403, 404, 409):
                    log.error("the node refused this worker: %s", exc)
                    return EXIT_REFUSED
            except _Refused as exc:
                log.error("the node refused this worker: %s", exc)
                return EXIT_REFUSED
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, ValueError) as e:
                log.info("node unreachable (%s); retrying", e)
            finally:
                if self._ws is not None:
                    lost_since = loop.time()
                self._ws = None
            if self._done():  # finished and every event acknowledged; until then the
                return 0      # events are only here, so keep trying to hand them over
            if loop.time() - lost_since > self.orphan_timeout_s:
                log.error("no node for %.0f s; giving up", self.orphan_timeout_s)
                return EXIT_ORPHANED
            if not self.node_dir.is_dir():
                # The node's data dir was deleted (a removed install, a test's temp dir):
                # no node can ever come back for this run, and nothing could be resent.
                log.error("the node's data dir %s is gone; giving up", self.node_dir)
                return EXIT_ORPHANED
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _session(self, ws: ClientConnection) -> bool:
        """One connection; returns True when the flow is over and everything is acked."""
        await ws.send(json.dumps({"t": "hello", "fid": self.fid, "token": self.token,
                                  "pid": os.getpid()}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("t") == "refuse":
            raise _Refused(welcome.get("reason", "refused"))
        self._ws = ws
        self.acked = max(self.acked, int(welcome.get("acked", 0)))
        self._trim()
        self._sent = self.acked
        if self._flow_task is None and not self._finished.is_set():
            self._start(welcome["launch"])
        for candidate in welcome.get("candidates", []):
            self._deliver(candidate)
        sender = asyncio.create_task(self._send_loop(ws))
        try:
            async for frame in ws:
                message = json.loads(frame)
                kind = message.get("t")
                if kind == "ack":
                    self.acked = max(self.acked, int(message["wseq"]))
                    self._trim()
                    self._wake.set()
                elif kind == "candidate":
                    self._deliver(message)
                elif kind == "cancel":
                    self._cancel()
                if self._done():
                    return True
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return self._done()

    def _done(self) -> bool:
        return self._finished.is_set() and not self.outbox

    async def _send_loop(self, ws: ClientConnection) -> None:
        while True:
            pending = [item for item in self.outbox if item[0] > self._sent]
            for wseq, type, data in pending:
                await ws.send(json.dumps({"t": "event", "wseq": wseq, "type": type,
                                          "data": data}))
                self._sent = wseq
            if self._done():
                await ws.close(1000, "flow finished")
                return
            self._wake.clear()
            if not [item for item in self.outbox if item[0] > self._sent]:
                await self._wake.wait()

    def _trim(self) -> None:
        if self.outbox and self.outbox[0][0] <= self.acked:
            self.outbox = [item for item in self.outbox if item[0] > self.acked]

    def _deliver(self, message: dict[str, Any]) -> None:
        cid = str(message["cid"])
        if cid in self.seen_cids:
            return
        queue = self.locks.get(str(message["lid"]))
        if queue is None:
            return  # a lock this worker has finished with; the node already decided it
        self.seen_cids.add(cid)
        queue.put_nowait(Candidate(cid, str(message["lid"]), message.get("value")))

    def _cancel(self) -> None:
        if self._flow_task is not None and not self._flow_task.done():
            self._flow_task.cancel()
        else:
            os._exit(0)

    # -- running the flow -------------------------------------------------------------

    def _start(self, launch: dict[str, Any]) -> None:
        self._flow_task = asyncio.create_task(self._run_flow(launch), name=f"flow:{self.fid}")

    async def _run_flow(self, launch: dict[str, Any]) -> None:
        self.emit("status", {"state": "running", "pid": os.getpid()})
        self._hub = HubClient(launch.get("hub_url") or "", launch.get("hub_token") or "",
                              trust=Trust(tuple(launch.get("hub_anchors") or ())))
        ctx = Context(
            self, self.fid, launch.get("node", "local"), self._hub,
            release_timeout=float(launch.get("release_timeout", 60.0)),
            no_candidate_timeout=float(launch.get("no_candidate_timeout", 3 * 3600.0)),
            workdir=self.node_dir / "runs" / self.fid,
        )
        try:
            flow = resolve_flow(launch["origin"], launch["flow"])
            raw = launch.get("inputs")
            if raw is None:
                inputs = await ctx.lock(
                    f"Inputs for {flow.name}: {flow.description}", flow.inputs, initial=True)
            else:
                inputs = flow.inputs.model_validate(raw)
            result = await flow.run(ctx, inputs)
            self.emit("result", {"value": _jsonable(result)})
        except asyncio.CancelledError:
            self.emit("log", {"level": "warning", "message": "cancelled"})
        except ValidationError as exc:
            self.emit("error", {"message": f"invalid inputs: {exc}", "type": "ValidationError"})
        except Exception as exc:
            self.emit("error", {
                "message": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__,
                "traceback": traceback.format_exc()[-4000:],
            })
        finally:
            with contextlib.suppress(Exception):
                await self._hub.aclose()
            self._finished.set()
            self._flow_task = None
            self._wake.set()


class _Refused(Exception):
    pass


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker %(levelname)s %(message)s")
    launch = json.loads(sys.stdin.readline())
    sys.stdin.close()
    os.chdir(launch.get("cwd") or os.getcwd())
    worker = Worker(launch["fid"], launch["token"], Path(launch["node_dir"]),
                    float(launch.get("orphan_timeout_s", 600.0)))
    return asyncio.run(worker.run())


if __name__ == "__main__":
    sys.exit(main())
