"""The driver's end of the direct insert link: a TCP server on the driver's event loop.

Each connection is one engine: it says ``hello`` with the key, then sends ``insert``
frames; each is answered with the ``insert_result`` the hub relay would have carried, by the
same function, in order. Blocks are processed inline on the loop, as on the relay path.
A connection that sends a wrong key or a frame that cannot be one is closed with a logged
reason; the server and every other connection go on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from backend.errors import ProtocolViolation
from backend.protocol import insertlink
from backend.protocol.tasks import InsertLink

log = logging.getLogger(__name__)

#: How long a connection may take to say hello, and how large the hello may be. Before
#: it, the peer is nobody: without a deadline a silent or trickling connection was kept
#: for good (each an open file, so a few thousand of them left the driver unable to
#: accept the real engine, or to reconnect to its hub), and a hello could announce 16 MiB.
HELLO_TIMEOUT_S = 5.0
MAX_HELLO_BYTES = 4096

#: ``insert_listen`` when a driver's config does not say: loopback, any free port.
DEFAULT_LISTEN = "127.0.0.1:0"
_WILDCARDS = {"", "0.0.0.0", "::"}


def parse_listen(value: object) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (``[v6]:PORT`` too) from the config, or None for ``"off"``."""
    text = str(value if value is not None else DEFAULT_LISTEN).strip()
    if text.lower() == "off":
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"insert_listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}) or 'off', "
                         f"not {text!r}")
    return host.strip("[]"), int(port)


class InsertServer:
    """Serves ``process`` (an insert frame in, the reply frame out) to engines that know
    the key."""

    def __init__(self, process: Callable[[bytes], bytes]) -> None:
        self._process = process
        self.key = secrets.token_urlsafe(32)
        self.sealed = False
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int, advertise: str | None = None,
                    sealed: bool = False) -> InsertLink:
        """Listen; the link engines are told to use (``advertise`` or the bound host).
        ``sealed`` encrypts and authenticates every frame (a link between machines)."""
        self.sealed = sealed
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        shown = advertise or (host if host not in _WILDCARDS else _hostname())
        log.info("insert link listening on %s:%d (engines connect to %s; %s)", bound[0],
                 bound[1], shown, "sealed" if sealed else "plain, loopback")
        return InsertLink(host=shown, port=int(bound[1]), key=self.key, sealed=sealed)

    async def close(self) -> None:
        """Stop listening and close every engine's connection (each ends on its own)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        try:
            first = await asyncio.wait_for(_read_frame(reader, MAX_HELLO_BYTES),
                                           HELLO_TIMEOUT_S)
            sealers = None
            if self.sealed:
                engine, answer, sealers = insertlink.check_sealed_hello(first, self.key)
            else:
                engine, answer = insertlink.check_hello(first, self.key)
            _send(writer, answer)
            if not engine:
                log.warning("insert link from %s refused: %s", peer, answer[4:].decode(
                    errors="replace"))
                return
            log.info("insert link from %s (%s) open%s", engine, peer,
                     ", sealed" if sealers else "")
            while True:
                frame = await _read_frame(reader)
                if sealers is not None:
                    frame = sealers[1].open(frame)
                reply = self._process(frame)
                if reply:  # b"": a frame that wants no answer
                    _send(writer, sealers[0].seal(reply) if sealers is not None else reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the engine went away (a run ended, or the engine did)
        except TimeoutError:
            log.warning("insert link from %s closed: no hello within %g s", peer,
                        HELLO_TIMEOUT_S)
        except (ValueError, ProtocolViolation) as exc:
            log.warning("insert link from %s closed: %s", peer, exc)
        except Exception:  # a bug in handling one frame: this engine's link only
            log.exception("insert link from %s closed on an unexpected error", peer)
        finally:
            self._connections.pop(task, None)
            writer.close()


async def _read_frame(reader: asyncio.StreamReader, limit: int = insertlink.MAX_FRAME
                      ) -> bytes:
    length = insertlink.frame_length(await reader.readexactly(insertlink.LENGTH.size))
    if length > limit:
        raise ValueError(f"a frame of {length} bytes where a hello of at most {limit} "
                         "was expected")
    return await reader.readexactly(length)


def _send(writer: asyncio.StreamWriter, frame: bytes) -> None:
    writer.writelines(insertlink.framed(frame))


def _hostname() -> str:
    import socket

    return socket.getfqdn()
