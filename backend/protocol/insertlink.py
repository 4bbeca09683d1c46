"""The direct insert link between the engine and a driver, sans I/O.

Through the hub, every insert block crosses the hub twice (engine -> hub -> driver -> hub ->
engine), and on the engine's side each one goes through its asyncio loop and websockets.
Measured through the real processes on the 2-core reference machine (32 tracks, two fixed
instances), the hub spent about 0.45 s of CPU per minute of audio relaying them and the
engine's loop thread competed for its render thread's GIL. So a driver also listens on a
plain TCP port of its own, and the engine sends it the blocks directly; the hub relay
remains for whatever cannot connect (another network, a driver with the link switched off).

The stream carries the same binary frames as the hub relay (:mod:`frames`: ``insert`` and
``insert_result``), each prefixed by its length (4 bytes, big-endian). The engine speaks
first: a ``hello`` frame with the key the hub handed it for this driver; the driver answers
``welcome`` or ``refused`` (and closes). The key is random per driver process, travels only
over the agents' authenticated channel to the hub and back out to engines, and is compared
in constant time.

A link that crosses machines is *sealed* (:mod:`insertseal`): the hello carries a nonce
instead of the key, the driver proves it holds the key, and every frame after is encrypted
and authenticated. On loopback the plain link is kept: nothing leaves the machine.
"""

from __future__ import annotations

import hmac
import struct

from backend.protocol import frames, insertseal

LENGTH = struct.Struct(">I")
#: No frame on the link is larger: a block of 65,536 stereo float64 frames is 1 MiB.
MAX_FRAME = 16 * 1024 * 1024


def framed(frame: bytes) -> list[bytes]:
    """The buffers to send for one frame (for ``socket.sendmsg``: no copy of the block)."""
    return [LENGTH.pack(len(frame)), frame]


def frame_length(prefix: bytes) -> int:
    """The length a prefix announces; ``ValueError`` when it cannot be a frame of the link."""
    length: int = LENGTH.unpack(prefix)[0]
    if not 0 < length <= MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is not an insert-link frame "
                         f"(at most {MAX_FRAME})")
    return length


def hello(key: str, engine: str) -> bytes:
    return frames.pack({"k": "hello", "key": key, "engine": engine})


def check_hello(frame: bytes, key: str) -> tuple[str, bytes]:
    """The engine's name and the frame to answer; the name is empty when refused."""
    try:
        header, _ = frames.unpack(frame)
    except Exception:
        return "", frames.pack({"k": "refused", "error": "the first frame must be a hello"})
    offered = header.get("key")
    if header.get("k") != "hello" or not isinstance(offered, str):
        return "", frames.pack({"k": "refused", "error": "the first frame must be a hello"})
    if not hmac.compare_digest(offered.encode(), key.encode()):
        return "", frames.pack({"k": "refused", "error": "wrong insert key; the hub hands "
                                "out the current one with each play and render"})
    return str(header.get("engine") or "?"), frames.pack({"k": "welcome"})


def check_welcome(frame: bytes) -> None:
    """``ConnectionRefusedError`` with the driver's reason unless the frame welcomes us."""
    header, _ = frames.unpack(frame)
    if header.get("k") != "welcome":
        raise ConnectionRefusedError(str(header.get("error") or f"answered {header.get('k')!r}"))


# -- sealed (between machines; backend/protocol/insertseal.py) --------------------------


def sealed_hello(engine: str, nonce: bytes) -> bytes:
    """The engine's hello on a sealed link: its name and nonce, never the key."""
    return frames.pack({"k": "hello", "engine": engine, "nonce": nonce.hex()})


def check_sealed_hello(frame: bytes, key: str
                       ) -> tuple[str, bytes, tuple[insertseal.Sealer, insertseal.Sealer] | None]:
    """The engine's name, the frame to answer (``welcome`` with the driver's nonce and
    proof) and the driver's (send, open) sealers; name and sealers empty when refused."""
    try:
        header, _ = frames.unpack(frame)
        engine_nonce = bytes.fromhex(str(header.get("nonce")))
    except Exception:
        engine_nonce = b""
        header = {}
    if header.get("k") != "hello" or len(engine_nonce) != insertseal.NONCE_BYTES:
        refusal = ("this driver's insert link is sealed (it crosses machines): the first "
                   "frame must be a hello with a nonce; run the same version on both")
        return "", frames.pack({"k": "refused", "error": refusal}), None
    driver_nonce = insertseal.new_nonce()
    welcome = frames.pack({"k": "welcome", "nonce": driver_nonce.hex(),
                           "proof": insertseal.proof(key, engine_nonce, driver_nonce)})
    sealers = insertseal.driver_sealers(key, engine_nonce, driver_nonce)
    return str(header.get("engine") or "?"), welcome, sealers


def check_sealed_welcome(frame: bytes, key: str, engine_nonce: bytes
                         ) -> tuple[insertseal.Sealer, insertseal.Sealer]:
    """The engine's (send, open) sealers once the driver proved it knows the key;
    ``ConnectionRefusedError`` with the reason otherwise."""
    header, _ = frames.unpack(frame)
    if header.get("k") != "welcome":
        raise ConnectionRefusedError(str(header.get("error") or f"answered {header.get('k')!r}"))
    try:
        driver_nonce = bytes.fromhex(str(header.get("nonce")))
    except ValueError:
        driver_nonce = b""
    if len(driver_nonce) != insertseal.NONCE_BYTES or not insertseal.check_proof(
            key, engine_nonce, driver_nonce, str(header.get("proof") or "")):
        raise ConnectionRefusedError("the driver could not prove it holds the insert key: "
                                     "not the driver the hub announced")
    return insertseal.engine_sealers(key, engine_nonce, driver_nonce)
