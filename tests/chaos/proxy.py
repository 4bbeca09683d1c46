"""A small TCP proxy the chaos suite owns, between the agents and the hub.

Agents are started with ``--hub http://127.0.0.1:PROXY``; every byte of their WebSocket
channel (and a runner's artifact uploads) goes through here, so the suite can do to the
network what a real one does, without root or ``tc``:

- :meth:`Proxy.drop` aborts every connection at once (an RST, as a NAT or a rebooted
  switch does); the agents see it and reconnect;
- :meth:`Proxy.delay` forwards every chunk only after ``seconds``, in order (a slow or
  congested link: health checks go unanswered in time, messages arrive late);
- :meth:`Proxy.half_open` stops forwarding in both directions without closing anything
  (a peer whose machine vanished: the sockets stay open and silent), and at the end
  aborts the connections that were silenced, as a real half-open connection ends once a
  keepalive or a timeout notices it. New connections made meanwhile hang the same way.

It runs an asyncio loop in a thread of its own, so the synchronous test can call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Conn:
    """One accepted connection and its upstream; ``silenced`` once a half-open hit it."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silenced: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class Proxy:
    """Forward 127.0.0.1:``port`` (any free one) to ``target_port`` on loopback."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections_made = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy",
                                        daemon=True)
        self._conns: set[_Conn] = set()
        self._latency = 0.0
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None

    # -- control, from the test's thread ---------------------------------------------

    def start(self) -> Proxy:
        self._thread.start()
        self.port = self._call(self._listen())
        return self

    def drop(self) -> int:
        """Abort every open connection; returns how many."""
        return self._call(self._drop())

    def delay(self, seconds: float) -> None:
        """Forward each chunk ``seconds`` after it was read (0: at once)."""
        self._loop.call_soon_threadsafe(setattr, self, "_latency", max(0.0, seconds))

    def half_open(self, on: bool) -> int:
        """Stop forwarding (``on``), or abort the silenced connections and flow again."""
        return self._call(self._half_open(on))

    def heal(self) -> None:
        """Back to a plain, prompt proxy (no delay, nothing silenced)."""
        self.delay(0.0)
        self.half_open(False)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coro: object) -> int:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return int(future.result(10))

    # -- the loop's side ---------------------------------------------------------------

    async def _listen(self) -> int:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _drop(self) -> int:
        conns = list(self._conns)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def _half_open(self, on: bool) -> int:
        assert self._flowing is not None
        if on:
            self._flowing.clear()
            for conn in self._conns:
                conn.silenced = True
            return len(self._conns)
        silenced = [c for c in self._conns if c.silenced]
        for conn in silenced:
            conn.abort()
        self._flowing.set()
        return len(silenced)

    async def _close(self) -> int:
        if self._server is not None:
            self._server.close()
        n = await self._drop()
        for conn in list(self._conns):
            for task in conn.tasks:
                task.cancel()
        return n

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        conn = _Conn(writer, silenced=not self._flowing.is_set())
        self._conns.add(conn)
        self.connections_made += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()  # the hub is down: refuse, as it would
            self._conns.discard(conn)
            return
        conn.upstream = up_writer
        conn.tasks = [asyncio.create_task(self._pump(conn, reader, up_writer)),
                      asyncio.create_task(self._pump(conn, up_reader, writer))]
        try:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            conn.abort()
            self._conns.discard(conn)

    async def _pump(self, conn: _Conn, src: asyncio.StreamReader,
                    dst: asyncio.StreamWriter) -> None:
        """Copy ``src`` to ``dst``: each chunk waits for the latency of when it was read,
        and for the flow to resume; a writer task keeps the order."""
        assert self._flowing is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)
        writer = asyncio.create_task(self._drain(conn, queue, dst))
        writer.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                                 or conn.abort())  # a dead writer ends the connection
        try:
            while True:
                await self._flowing.wait()
                data = await src.read(CHUNK)
                if not data:
                    break
                await queue.put((time.monotonic() + self._latency, data))
            await queue.put((0.0, b""))
            await writer
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.cancel()
            conn.abort()

    async def _drain(self, conn: _Conn, queue: asyncio.Queue[tuple[float, bytes]],
                     dst: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    dst.write_eof()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._flowing.wait()
            dst.write(data)
            await dst.drain()
