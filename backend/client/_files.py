"""Streaming a response body to a file without blocking the loop or leaving half files."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import httpx

from backend import diskspace
from backend.client._errors import ClientError

#: Received bytes are written in pieces of about this size, each in a worker thread.
WRITE_CHUNK = 1 << 20


async def stream_to(response: httpx.Response, write: Callable[[bytes], object],
                    batch: int = WRITE_CHUNK) -> int:
    """Hand the body to ``write`` on a worker thread in pieces of about ``batch`` bytes (one
    thread hop per piece, not per network read); the bytes handed."""
    written = 0
    pending: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        pending.append(chunk)
        size += len(chunk)
        if size >= batch:
            await asyncio.to_thread(write, b"".join(pending))
            written += size
            pending, size = [], 0
    if pending:
        await asyncio.to_thread(write, b"".join(pending))
        written += size
    return written


async def save(response: httpx.Response, path: Path, what: str,
               room: str = "the download folder") -> Path:
    """Write the body to ``path`` through ``path.part``, renamed only when complete.

    A body shorter than its ``Content-Length`` (a cut) raises :class:`ClientError` and
    leaves nothing at ``path``, so a file that exists there is always whole. So does a
    full disk: a 507 :class:`ClientError` saying that ``room`` is full and where, checked
    before the first byte (the size is known) and caught on every write.
    """
    try:
        return await _save(response, path, what, room)
    except diskspace.StorageFull as exc:
        raise ClientError(f"{what}: {exc.message}", 507) from None


async def _save(response: httpx.Response, path: Path, what: str, room: str) -> Path:
    expected = int(response.headers.get("content-length", -1))
    await asyncio.to_thread(diskspace.check, room, path.parent, max(0, expected))
    with diskspace.guard(room, path.parent):
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        out = await asyncio.to_thread(partial.open, "wb")
        written = 0
        try:
            written = await stream_to(response, out.write)
        except OSError as exc:
            if diskspace.is_full(exc):
                raise diskspace.StorageFull(room, path.parent) from exc
            raise
        finally:
            try:
                await asyncio.to_thread(out.close)  # flushes: a full disk can show here
            except OSError as exc:
                if not diskspace.is_full(exc):
                    raise
                raise diskspace.StorageFull(room, path.parent) from exc
        if expected >= 0 and written != expected:
            raise ClientError(f"{what}: the download stopped at {written} of {expected} "
                              "bytes; try again", 502)
        await asyncio.to_thread(os.replace, partial, path)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return path
