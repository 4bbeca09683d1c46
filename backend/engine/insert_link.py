"""The engine's end of a direct insert link to one driver: a socket and a reader thread.

Why not the event loop: the graph's thread sends each block itself (one ``sendmsg``, the
GIL released while the kernel copies it) and a reader thread hands each result to the
router, so a block never waits for the loop to wake, and the loop never competes with the
render for the GIL. On the relay path each send woke the loop, and the render thread then
waited to get the GIL back: a fifth of a second per minute of audio, measured with py-spy.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from backend.errors import ProtocolViolation
from backend.loopback import resolves_to_loopback
from backend.protocol import frames, insertlink, insertseal
from backend.protocol.tasks import InsertLink

log = logging.getLogger(__name__)

#: How long connecting and the hello may take, in all, before the engine uses the hub
#: relay instead. In all: a timeout per read let a driver that trickled its welcome a few
#: bytes at a time hold the render thread for as long as it kept trickling.
CONNECT_TIMEOUT_S = 1.0
#: A welcome is a few dozen bytes; a longer first answer is not one.
MAX_WELCOME_BYTES = 4096

OnResult = Callable[[dict[str, Any], memoryview], None]
OnLost = Callable[[str], None]


class DirectLink:
    """An open, welcomed link; ``send`` from any thread, results and loss via callbacks."""

    def __init__(self, driver: str, link: InsertLink, engine: str, on_result: OnResult,
                 on_lost: OnLost) -> None:
        """Connect and say hello (blocking, up to :data:`CONNECT_TIMEOUT_S`); ``OSError``
        (``ConnectionRefusedError`` with the driver's reason) when that fails."""
        self.driver = driver
        self.link = link
        self._on_result = on_result
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._closed = False
        if not link.sealed and not resolves_to_loopback(link.host):
            raise ConnectionRefusedError(
                f"{driver}'s insert link at {link.host} is not sealed, and a plain link must "
                "not cross machines; run the same version on both (blocks go via the hub)")
        #: (send, open) when the link is sealed: every frame encrypted and authenticated.
        self._sealers: tuple[insertseal.Sealer, insertseal.Sealer] | None = None
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        self._sock = socket.create_connection((link.host, link.port), CONNECT_TIMEOUT_S)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if link.sealed:
                nonce = insertseal.new_nonce()
                self._sock.sendmsg(insertlink.framed(insertlink.sealed_hello(engine, nonce)))
                self._sealers = insertlink.check_sealed_welcome(self._welcome(deadline),
                                                                link.key, nonce)
            else:
                self._sock.sendmsg(insertlink.framed(insertlink.hello(link.key, engine)))
                insertlink.check_welcome(self._welcome(deadline))
        except (OSError, ValueError, ProtocolViolation) as exc:
            self._sock.close()
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"{driver}'s insert link answered nonsense: {exc}") from None
        self._sock.settimeout(None)
        # Only now: the handshake read exactly its bytes, so nothing is left in a buffer.
        self._reader = self._sock.makefile("rb", buffering=256 * 1024)
        self._thread = threading.Thread(target=self._read_results, daemon=True,
                                        name=f"insert-link-{driver}")
        self._thread.start()

    @property
    def alive(self) -> bool:
        return not self._closed

    def send(self, frame: bytes) -> None:
        """Send one frame; ``OSError`` if the link is gone."""
        if self._closed:
            raise ConnectionError(f"the insert link to {self.driver} is closed")
        with self._lock:  # sealing counts frames: seal and send in one order
            if self._sealers is not None:
                frame = self._sealers[0].seal(frame)
            buffers = insertlink.framed(frame)
            while buffers:
                sent = self._sock.sendmsg(buffers)
                buffers = _advance(buffers, sent)

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _welcome(self, deadline: float) -> bytes:
        """The driver's answer to the hello, whole by ``deadline`` or ``TimeoutError``."""
        length = insertlink.frame_length(self._exactly(insertlink.LENGTH.size, deadline))
        if length > MAX_WELCOME_BYTES:
            raise ValueError(f"a first answer of {length} bytes is not a welcome")
        return self._exactly(length, deadline)

    def _exactly(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.driver} did not answer the hello within "
                                   f"{CONNECT_TIMEOUT_S:g} s")
            self._sock.settimeout(left)
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the driver closed the link")
            data += chunk
        return bytes(data)

    def _read_frame(self) -> bytes:
        prefix = self._reader.read(insertlink.LENGTH.size)
        if len(prefix) < insertlink.LENGTH.size:
            raise ConnectionError("the driver closed the link")
        length = insertlink.frame_length(prefix)
        frame: bytes = self._reader.read(length)
        if len(frame) < length:
            raise ConnectionError("the driver closed the link mid-frame")
        return frame

    def _read_results(self) -> None:
        try:
            while True:
                frame = self._read_frame()
                if self._sealers is not None:
                    frame = self._sealers[1].open(frame)
                header, payload = frames.unpack(frame)
                if header.get("k") == "insert_result":
                    self._on_result(header, payload)
        except (OSError, ValueError, ProtocolViolation) as exc:
            if not self._closed:
                self._closed = True
                log.warning("insert link to %s lost: %s", self.driver, exc)
                self._on_lost(str(exc) or type(exc).__name__)
        finally:
            self._reader.close()
            self._sock.close()


def _advance(buffers: list[bytes], sent: int) -> list[bytes]:
    """What is left of ``buffers`` after ``sent`` bytes of them went out."""
    left = []
    for buf in buffers:
        if sent >= len(buf):
            sent -= len(buf)
            continue
        left.append(buf[sent:] if sent else buf)
        sent = 0
    return left
