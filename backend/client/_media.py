"""Moving media files to and from the hub: hashing, streaming up, and fetching with the
hash checked, so neither side ever holds a file under a name that is not its content.

Every file read, hash and write runs in a worker thread in pieces of about a MiB: a
console or an engine fetching a few GiB keeps its event loop free for meters and health
checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

import httpx

from backend import diskspace
from backend.client._errors import ClientError
from backend.client._files import stream_to

#: Bytes read from (or written to) a file per worker-thread hop.
CHUNK = 1 << 20


def file_sha256(path: Path, progress: Callable[[float], object] | None = None) -> str:
    """The SHA-256 of the file's bytes, as the hub names media (blocking: run it in a
    thread); ``progress`` gets the fraction read, for a bar on a big file."""
    with path.open("rb") as handle:
        if progress is None:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        digest = hashlib.sha256()
        size = os.fstat(handle.fileno()).st_size or 1
        done = 0
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(done / size)
        return digest.hexdigest()


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes in pieces, each read in a worker thread (an upload's body)."""
    handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def save_verified(response: httpx.Response, dest: Path, sha256: str) -> int:
    """Stream the body to ``dest.with_suffix('.part')``, check its SHA-256 is ``sha256`` and
    rename it to ``dest``; the bytes written. A different hash (a corrupted transfer, a
    proxy's error page) or a cut leaves nothing and raises :class:`ClientError`; a full
    disk is a 507 :class:`ClientError` naming the folder."""
    what = f"media {sha256[:12]}…"
    part = dest.with_suffix(".part")
    try:
        with diskspace.guard(f"the folder of {dest.name}", dest.parent):
            await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
            digest, size = await _write(response, part)
            if digest != sha256:
                raise ClientError(f"{what}: the hub sent {size} bytes whose SHA-256 is "
                                  f"{digest}, not {sha256}; fetch it again (if it happens "
                                  "again, the hub's copy is damaged: upload the file anew)",
                                  502)
            await asyncio.to_thread(os.replace, part, dest)
    except diskspace.StorageFull as exc:
        raise ClientError(f"{what}: {exc.message}", 507) from None
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)
    return size


async def _write(response: httpx.Response, part: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    handle: BinaryIO = await asyncio.to_thread(part.open, "wb")

    def write(data: bytes) -> None:
        digest.update(data)
        handle.write(data)

    try:
        size = await stream_to(response, write, CHUNK)
    finally:
        await asyncio.to_thread(handle.close)  # flushes: a full disk can show here
    return digest.hexdigest(), size
