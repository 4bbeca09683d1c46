"""Content-addressed media on the hub: files named by the SHA-256 of their bytes.

A task spec may name a file source by hash (``{"type": "file", "sha256": ...}``) instead
of by a path on the engine's machine: the file is uploaded to the hub once, and every
engine or runner that needs it fetches exactly those bytes and caches them under the same
name. Naming by content makes the name a proof: the hub checks the hash of every upload
against the name it was sent under, a fetcher checks it again, and the same content
uploaded twice is stored once.

Layout: ``<data-dir>/media/<sha256>``, and one row per file in the ``media`` table
(``bytes``, ``created_at``). An upload streams into a hidden part file in the same folder,
hashed as it arrives, and is renamed into place only when its hash is the one in its name,
so a file under a hash's name is always whole and always that content. Nothing else is
written here, which lets :meth:`MediaStore.load` put the folder and the table back in
agreement after a crash (see there).

Which tasks use a file is the task service's to say (their specs); this module stores,
checks and removes, and the routes (:mod:`backend.hub.media_api`) refuse to delete a
file a task still needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from backend import diskspace
from backend.errors import RequestRefused
from backend.hub.events import EventLog
from backend.store import Store

log = logging.getLogger(__name__)

#: A media name: the SHA-256 of the file's bytes, 64 lowercase hex digits.
SHA256_PATTERN = r"^[0-9a-f]{64}$"
_SHA256 = re.compile(SHA256_PATTERN)
#: The default largest upload: big enough for hours of multichannel 24-bit audio, small
#: enough that one mistaken upload cannot take a studio server's disk (``--media-limit-mb``).
DEFAULT_LIMIT_BYTES = 4096 * 1024 * 1024
#: Received bytes are hashed and written in pieces of about this size, each in a worker
#: thread, so a big upload neither blocks the loop nor costs a thread hop per 64 KiB.
WRITE_CHUNK = 1 << 20
WHAT = "the hub's data dir"


class MediaError(RequestRefused):
    """An upload or deletion the hub refuses; ``status`` is the HTTP status to answer."""


@dataclass(frozen=True)
class MediaEntry:
    sha256: str
    bytes: int
    created_at: float

    def view(self, used_by: list[str]) -> dict[str, Any]:
        """The entry as the API shows it, with the tasks (not released) that name it."""
        return {"sha256": self.sha256, "bytes": self.bytes, "created_at": self.created_at,
                "used_by": used_by}


def unknown(sha256: str) -> MediaError:
    """404 for a hash the hub does not hold, saying how to list and how to upload."""
    return MediaError(404, f"the hub holds no media {sha256}; GET /api/v1/media lists what "
                      f"it holds, PUT /api/v1/media/{sha256} uploads it")


def missing_media(held: Callable[[str], bool], spec: Mapping[str, Any],
                  where: str = "") -> str | None:
    """Why ``spec`` (JSON) cannot be used yet, if one of its file sources names media that
    ``held`` says the hub does not hold: located (``where`` + ``tracks.N.source.sha256``)
    and saying how to add it. A task's reservation and a render job's submission answer
    it as their 422."""
    for index, sha256 in _named_media(spec):
        if not held(sha256):
            return (f"{where}tracks.{index}.source.sha256: the hub holds no media {sha256}; "
                    f"upload the file first with PUT /api/v1/media/{sha256} (or let "
                    "`controlroom task reserve` upload the spec's files)")
    return None


class MediaStore:
    """The media folder and its table, with every entry kept in memory (a reservation
    checks its spec's hashes without a query)."""

    def __init__(self, store: Store, events: EventLog, data_dir: Path,
                 limit_bytes: int = DEFAULT_LIMIT_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._events = events
        self.dir = data_dir / "media"
        self.limit_bytes = limit_bytes
        self._clock = clock
        self.entries: dict[str, MediaEntry] = {}
        #: Media named by a reservation or a job submission being recorded right now (not
        #: yet among the tasks or jobs): a deletion must wait for them as for those.
        self._claims: Counter[str] = Counter()
        self._committing = asyncio.Lock()

    @contextlib.contextmanager
    def claim(self, hashes: Iterable[str]) -> Iterator[None]:
        """Hold ``hashes`` against deletion while the task or job naming them is stored."""
        held = Counter(hashes)
        self._claims += held
        try:
            yield
        finally:
            self._claims -= held

    def claimed(self, sha256: str) -> bool:
        return self._claims[sha256] > 0

    # -- start-up ---------------------------------------------------------------------

    async def load(self) -> None:
        """Read the table and make it agree with the folder.

        Part files are uploads a stop cut short: removed. A row whose file is gone lost its
        file to a deletion cut short (the file goes first): the row goes too. A file with no
        row was renamed into place (so its hash had matched) just before a stop: adopted.
        """
        on_disk = await asyncio.to_thread(self._scan)
        for row in await self._store.query("SELECT sha256, bytes, created_at FROM media"):
            sha256 = str(row["sha256"])
            if sha256 in on_disk:
                self.entries[sha256] = MediaEntry(sha256, int(row["bytes"]),
                                                  float(row["created_at"]))
            else:
                log.warning("media %s has no file in %s: forgetting it", sha256, self.dir)
                await self._store.update("DELETE FROM media WHERE sha256 = ?", (sha256,))
        for sha256, (size, mtime) in on_disk.items():
            if sha256 not in self.entries:
                entry = MediaEntry(sha256, size, mtime)
                log.info("adopting media %s (%d bytes), stored just before a stop",
                         sha256, entry.bytes)
                await self._store.execute(
                    "INSERT INTO media (sha256, bytes, created_at) VALUES (?, ?, ?)",
                    (sha256, entry.bytes, entry.created_at))
                self.entries[sha256] = entry

    def _scan(self) -> dict[str, tuple[int, float]]:
        """The folder's files by hash (size, modification time), part files removed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for part in self.dir.glob(".*.part"):
            log.info("removing %s, an upload the hub did not finish", part)
            part.unlink(missing_ok=True)
        found = {}
        for path in self.dir.iterdir():
            if _SHA256.match(path.name) and path.is_file():
                stat = path.stat()
                found[path.name] = (stat.st_size, stat.st_mtime)
        return found

    # -- reads ------------------------------------------------------------------------

    def get(self, sha256: str) -> MediaEntry:
        entry = self.entries.get(sha256)
        if entry is None:
            raise unknown(sha256)
        return entry

    def has(self, sha256: str) -> bool:
        return sha256 in self.entries

    def size(self, sha256: str) -> int:
        """Its bytes, or 0 for a hash the hub does not hold."""
        entry = self.entries.get(sha256)
        return entry.bytes if entry is not None else 0

    def path(self, sha256: str) -> Path:
        return self.dir / sha256

    # -- changes ----------------------------------------------------------------------

    async def put(self, sha256: str, chunks: AsyncIterator[bytes],
                  length: int | None = None) -> tuple[MediaEntry, bool]:
        """Store the bytes of ``chunks`` as ``sha256``: the entry and whether it was stored
        now (``False``: it already was, and ``chunks`` was not read; a declared ``length``
        other than the stored size is then a 422, as no such body can be that file).

        ``length`` (the request's ``Content-Length``, if it sent one) lets an upload over
        the limit or larger than the free space be refused before a byte is read. A body
        over the limit is a 413, one whose hash is not ``sha256`` a 422 naming its real
        hash, a full disk :class:`~backend.diskspace.StorageFull`; none leaves a file.
        """
        found = self.entries.get(sha256)
        if found is not None:
            if length is not None and length != found.bytes:
                raise MediaError(422, f"the body is {length} bytes, but media {sha256} is "
                                 f"{found.bytes} bytes, so the body is not that file: send "
                                 "the file whose SHA-256 is in the path")
            return found, False
        if length is not None and length > self.limit_bytes:
            raise self._too_big(f"{length} bytes")
        await asyncio.to_thread(diskspace.check, WHAT, self.dir, length or 0)
        part = self.dir / f".{sha256}.{secrets.token_hex(4)}.part"
        try:
            with diskspace.guard(WHAT, self.dir):
                digest, size = await self._receive(part, chunks)
            if digest != sha256:
                raise MediaError(422, f"the body's SHA-256 is {digest}, not {sha256} as the "
                                 f"path says ({size} bytes received): upload the file under "
                                 f"its own hash, PUT /api/v1/media/{digest}")
            # One upload at a time from here: two of the same content that arrived together
            # must not both rename and record (a failed second record would delete the
            # file the first one recorded).
            async with self._committing:
                found = self.entries.get(sha256)
                if found is not None:  # the same content arrived twice at once: keep one
                    return found, False
                entry = MediaEntry(sha256, size, self._clock())
                with diskspace.guard(WHAT, self.dir):
                    await asyncio.to_thread(os.replace, part, self.path(sha256))
                    try:
                        await self._events.append(
                            "media.stored", sha256, {"bytes": size},
                            along=[("INSERT OR REPLACE INTO media (sha256, bytes, "
                                    "created_at) VALUES (?, ?, ?)",
                                    (sha256, size, entry.created_at))])
                    except BaseException:
                        self.path(sha256).unlink(missing_ok=True)  # not recorded: not stored
                        raise
                self.entries[sha256] = entry
            log.info("media %s stored (%d bytes)", sha256, size)
            return entry, True
        finally:
            await asyncio.to_thread(part.unlink, missing_ok=True)

    async def delete(self, sha256: str) -> MediaEntry:
        """Forget ``sha256`` and remove its file; the caller has checked no task needs it.

        Gone from memory at once (before any await), so a reservation that arrives while the
        file is removed is refused as for media never uploaded. The file goes before the
        row: a stop in between leaves a row without a file, which the next start forgets.
        A full disk does not stop a deletion: the row is then forgotten at the next start.
        """
        entry = self.entries.pop(sha256, None)
        if entry is None:
            raise unknown(sha256)
        await asyncio.to_thread(self.path(sha256).unlink, missing_ok=True)
        with diskspace.unless_full(log, f"the deletion of media {sha256}"):
            await self._events.append(
                "media.deleted", sha256, {"bytes": entry.bytes},
                along=[("DELETE FROM media WHERE sha256 = ?", (sha256,))])
        log.info("media %s deleted", sha256)
        return entry

    # -- helpers ----------------------------------------------------------------------

    def _too_big(self, size: str) -> MediaError:
        limit_mb = self.limit_bytes / (1024 * 1024)
        return MediaError(413, f"the upload ({size}) is over this hub's media limit of "
                          f"{self.limit_bytes} bytes ({limit_mb:g} MiB); start the hub with "
                          "a larger --media-limit-mb to take it")

    async def _receive(self, part: Path, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Write ``chunks`` to ``part``, hashing as they come; the hex digest and size."""
        digest = hashlib.sha256()
        handle: BinaryIO = await asyncio.to_thread(part.open, "wb")
        size = 0
        pending: list[bytes] = []
        pending_size = 0

        def write(data: bytes) -> None:
            digest.update(data)
            handle.write(data)

        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.limit_bytes:
                    raise self._too_big(f"more than {self.limit_bytes} bytes")
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_CHUNK:
                    await asyncio.to_thread(write, b"".join(pending))
                    pending, pending_size = [], 0
            if pending:
                await asyncio.to_thread(write, b"".join(pending))
        finally:
            await asyncio.to_thread(handle.close)  # flushes: a full disk can show here
        return digest.hexdigest(), size


def spec_media(spec: Mapping[str, Any]) -> list[str]:
    """The media hashes a stored spec (JSON) names, in track order, each once: the
    :func:`~backend.audio.spec.media_hashes` of a spec already validated, without
    validating it again for every listing."""
    return list(dict.fromkeys(sha256 for _, sha256 in _named_media(spec)))


def _named_media(spec: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """(track index, hash) of each file source of a spec (JSON) that names media."""
    for index, track in enumerate(spec.get("tracks") or ()):
        source = track.get("source") if isinstance(track, dict) else None
        sha256 = source.get("sha256") if isinstance(source, dict) else None
        if isinstance(sha256, str):
            yield index, sha256
