"""Sealing the direct insert link between machines: every frame encrypted and
authenticated with keys only the engine and the driver can derive. Sans I/O.

Why not TLS: the engine's side of the link is a blocking socket written by the render
thread and read by another thread, which one SSL object does not allow; and the link
already has a shared secret, the per-driver key that travels only over the agents'
authenticated channels (TLS, pinned, beyond loopback). So trust comes from the same
pinning, and the link needs no certificate of its own.

The handshake, in clear: the engine says ``hello`` with a random 16-byte nonce (never the
key); the driver answers ``welcome`` with its own nonce and a proof that it knows the key
(HMAC-SHA256 over both nonces), so an engine never sends a block to an impostor. Each
direction then has its own key, HKDF-SHA256 of the link key salted with both nonces, and
every frame is sealed with ChaCha20-Poly1305 under a counter nonce: a frame altered,
dropped, replayed or reordered fails to open and the link is closed. An engine that does
not know the key fails at its first frame. Keys are per connection; the link key is per
driver process (no forward secrecy beyond that).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 16
#: Bytes a sealed frame adds (the Poly1305 tag).
OVERHEAD = 16
_COUNTER = struct.Struct(">4xQ")  # 12-byte AEAD nonce: 4 zero bytes, a 64-bit counter


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def proof(key: str, engine_nonce: bytes, driver_nonce: bytes) -> str:
    """The driver's proof that it knows ``key`` (hex), bound to both nonces."""
    return hmac.new(key.encode(), b"driver" + engine_nonce + driver_nonce,
                    hashlib.sha256).hexdigest()


def check_proof(key: str, engine_nonce: bytes, driver_nonce: bytes, offered: str) -> bool:
    return hmac.compare_digest(proof(key, engine_nonce, driver_nonce).encode(),
                               offered.encode())


def _direction_key(key: str, engine_nonce: bytes, driver_nonce: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=engine_nonce + driver_nonce,
                info=b"controlroom insert link " + label).derive(key.encode())


class Sealer:
    """One direction of a sealed link: frames go in order, each under the next counter."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0

    def seal(self, frame: bytes) -> bytes:
        nonce = _COUNTER.pack(self._counter)
        self._counter += 1
        return self._aead.encrypt(nonce, frame, None)

    def open(self, sealed: bytes) -> bytes:
        """The frame; ``ValueError`` for one altered, replayed, out of order or sealed
        with another key."""
        nonce = _COUNTER.pack(self._counter)
        try:
            frame = self._aead.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise ValueError("an insert frame failed authentication (a wrong key, or the "
                             "stream was altered)") from None
        self._counter += 1
        return frame


def engine_sealers(key: str, engine_nonce: bytes, driver_nonce: bytes) -> tuple[Sealer, Sealer]:
    """(what the engine sends with, what it opens the driver's frames with)."""
    return (Sealer(_direction_key(key, engine_nonce, driver_nonce, b"engine to driver")),
            Sealer(_direction_key(key, engine_nonce, driver_nonce, b"driver to engine")))


def driver_sealers(key: str, engine_nonce: bytes, driver_nonce: bytes) -> tuple[Sealer, Sealer]:
    """(what the driver sends with, what it opens the engine's frames with)."""
    to_engine, from_engine = reversed(engine_sealers(key, engine_nonce, driver_nonce))
    return to_engine, from_engine
