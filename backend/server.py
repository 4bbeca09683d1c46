"""Serving an ASGI app on a socket we bound ourselves, inside a loop we own.

uvicorn's ``Server`` is made for owning the process: it captures SIGINT/SIGTERM and calls
``sys.exit(1)`` when it cannot bind. Embedded in the desktop app or a test, neither is
wanted (and a failed bind would exit the whole desktop app), so :class:`EmbeddedServer`
captures no signals, the socket is bound here first (a bind error is an ordinary
``OSError`` with the address in it), and :meth:`EmbeddedServer.stop` asks it to finish.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import socket
from collections.abc import Generator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

#: asyncio's TLS read buffer per connection (``SSLProtocol.max_size``); its default of
#: 256 KiB is allocated and zeroed for every connection: with 1,000 agents over WSS the
#: hub held 301 MiB more than over WS. A TLS record is at most 16 KiB, so 64 KiB still
#: reads several at once (measured: docs/performance.md, "TLS").
TLS_READ_BUFFER_BYTES = 64 * 1024

#: Transport-level cap on one WebSocket frame; the protocol's own 1 MiB limit sits below it
#: so an oversized frame gets a close reason that names the limit.
WS_TRANSPORT_MAX_BYTES = 4 * 1024 * 1024


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every kept-alive response waits ~40 ms for
    # the client's delayed ACK (measured; docs/performance.md).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """``tls`` (a certificate file and its key) makes it serve HTTPS and WSS only."""

    def __init__(self, app: ASGIApp, sock: socket.socket,
                 tls: tuple[Path, Path] | None = None) -> None:
        cert_file, key_file = tls if tls is not None else (None, None)
        if tls is not None:  # a class attribute: the loop builds the protocol itself
            asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER_BYTES
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            ws="auto",
            ws_max_size=WS_TRANSPORT_MAX_BYTES,
            # Control messages are tens of bytes and audio does not compress: deflate only
            # doubled the memory per agent (91 -> 47 KiB without it, same CPU).
            ws_per_message_deflate=False,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=2,
            ssl_certfile=cert_file,
            ssl_keyfile=key_file,
        )
        super().__init__(config)
        self.sock = sock
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the owner of the loop handles signals

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        self._task = asyncio.create_task(self.serve(sockets=[self.sock]), name="http-server")
        while not self.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.should_exit = True
        if self._task is not None:
            await self._task
