"""An agent's cache of media fetched from the hub by content hash, bounded, least recently
used out first.

A task spec may name a file source by the SHA-256 of media uploaded to the hub instead of
by a path on the agent's machine; the engine and the runners then need the bytes locally
before they can build a graph. Fetching them for every task would cost a download per
reservation, so each agent keeps them in ``<data dir>/media-cache/<sha256>``:

- a file is there only once complete and verified: the fetch (``HubClient.fetch_media``)
  streams into a part file, checks the hash and renames; anything else found in the
  folder at start (a part file of a fetch cut short by a crash) is removed;
- the total stays under the agent's ``media_cache_mb`` (default 4096): before a fetch,
  the least recently used files are deleted to make room, but never a file *pinned* by a
  task or job the agent holds (its graph may open it at any moment); when pinned files
  alone fill the cache it goes over the limit rather than refuse work, and shrinks back
  when they are unpinned;
- concurrent requests for one hash share one fetch;
- a file larger than the whole limit, media the hub does not have, and a full disk are
  refused with a :class:`MediaError` saying what to do.

The decisions (what to delete, what is too big) are made by :class:`LruPolicy`, which is
pure: events in (found, used, admitted, settled, pinned), decisions out (the hashes to
delete). :class:`MediaCache` carries them out on files and drives the fetches.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from backend import diskspace
from backend.client import ClientError
from backend.errors import ControlRoomError

__all__ = ["CONFIG_KEY", "DEFAULT_MB", "DIRNAME", "Fetcher", "LruPolicy", "MediaCache",
           "MediaError", "limit_bytes", "short"]

log = logging.getLogger(__name__)

#: The agent config key that bounds the cache, in MB (10^6 bytes, as sizes are shown).
CONFIG_KEY = "media_cache_mb"
DEFAULT_MB = 4096
DIRNAME = "media-cache"
#: What a full-disk error calls the cache's folder.
ROOM = "the agent's media cache"
MB = 1_000_000
_HASH = re.compile(r"^[0-9a-f]{64}$")


class MediaError(ControlRoomError):
    """Media named by hash could not be made available; ``message`` says why and what to
    do. The engine refuses the task with it, a runner fails the job with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Fetcher(Protocol):
    """Where media come from: :class:`backend.client.HubClient` fits as it is (tests pass a
    fake with the same two methods)."""

    async def media_info(self, sha256: str) -> dict[str, Any] | None: ...

    async def fetch_media(self, sha256: str, dest: Path) -> int: ...


def short(sha256: str) -> str:
    """How a hash is shown in messages: enough to find it, short enough to read."""
    return f"{sha256[:12]}…"


def limit_bytes(config: Mapping[str, Any]) -> int:
    """The cache's bound from an agent's config (``media_cache_mb``, default 4096)."""
    raw = config.get(CONFIG_KEY, DEFAULT_MB)
    try:
        mb = float(raw)
    except (TypeError, ValueError):
        mb = math.nan
    if not mb > 0 or math.isinf(mb):
        raise MediaError(f"{CONFIG_KEY} must be a positive number of MB, not {raw!r}: fix it "
                         "in the agent's config (e.g. 4096)")
    return int(mb * MB)


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


# --- the pure policy -----------------------------------------------------------------------


@dataclass
class _Entry:
    size: int
    used: float


class LruPolicy:
    """Which cached files to delete, and when a file cannot fit at all.

    Fed with what happens (a file found at start, used, about to be fetched, fetched,
    abandoned, a holder pinning or unpinning hashes); answers with the hashes whose files
    to delete, which it has already forgotten. No files, no clock, no sockets: the caller
    passes the times.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: dict[str, _Entry] = {}
        #: Fetches under way: room already promised to them.
        self.reserved: dict[str, int] = {}
        self.holders: dict[str, frozenset[str]] = {}

    @property
    def total(self) -> int:
        return sum(e.size for e in self.entries.values()) + sum(self.reserved.values())

    def pinned(self) -> set[str]:
        return set().union(*self.holders.values()) if self.holders else set()

    def has(self, sha: str) -> bool:
        return sha in self.entries

    def pin(self, holder: str, hashes: Iterable[str]) -> None:
        """``holder`` (a task or job id) needs ``hashes`` until it unpins; a second pin by
        the same holder replaces the first."""
        self.holders[holder] = frozenset(hashes)

    def unpin(self, holder: str) -> list[str]:
        """Forget ``holder``'s pins; returns what to delete now that the files it kept may
        go (the cache may have gone over its limit while they were pinned)."""
        self.holders.pop(holder, None)
        return self.trim()

    def found(self, sha: str, size: int, used: float) -> None:
        """A complete file is in the cache (at start: ``used`` is its modification time)."""
        self.entries[sha] = _Entry(size, used)

    def used(self, sha: str, at: float) -> None:
        self.entries[sha].used = at

    def forget(self, sha: str) -> None:
        """The file went away behind the cache's back (deleted by hand)."""
        self.entries.pop(sha, None)

    def admit(self, sha: str, size: int, keep: Iterable[str] = ()) -> list[str]:
        """Room for a fetch of ``size`` bytes: reserves it and returns the least recently
        used files to delete first, never a pinned one nor one in ``keep`` (the other
        files the same request needs). A file larger than the whole limit is a
        :class:`MediaError`."""
        if size > self.limit:
            wanted = math.ceil(size / MB) + 1
            raise MediaError(
                f"media {short(sha)} is {_mb(size)}, more than the whole media cache "
                f"({CONFIG_KEY} = {self.limit / MB:g}): raise {CONFIG_KEY} in the agent's "
                f"config to at least {wanted}, or use a smaller file")
        self.reserved[sha] = size
        return self.trim(keep)

    def settle(self, sha: str, size: int, at: float, keep: Iterable[str] = ()) -> list[str]:
        """The fetch completed with ``size`` bytes (normally the size admitted); returns
        what to delete if the file came out larger than promised."""
        self.reserved.pop(sha, None)
        self.entries[sha] = _Entry(size, at)
        return self.trim({sha, *keep})

    def abandon(self, sha: str) -> None:
        """The fetch failed: its room is free again."""
        self.reserved.pop(sha, None)

    def trim(self, keep: Iterable[str] = ()) -> list[str]:
        """Least recently used first, the unpinned files to delete to be within the limit
        (as many as it takes and no more; fewer if pinned files alone pass it)."""
        spared = self.pinned() | set(keep) | set(self.reserved)
        over = self.total - self.limit
        victims: list[str] = []
        if over <= 0:
            return victims
        for sha, entry in sorted(self.entries.items(), key=lambda kv: (kv[1].used, kv[0])):
            if over <= 0:
                break
            if sha in spared:
                continue
            victims.append(sha)
            over -= entry.size
        for sha in victims:
            del self.entries[sha]
        return victims


# --- the cache on disk ---------------------------------------------------------------------


class MediaCache:
    """``<data dir>/media-cache``: the files, the policy, the fetches under way."""

    def __init__(self, directory: Path, limit: int = DEFAULT_MB * MB,
                 clock: Callable[[], float] = time.time) -> None:
        # Absolute: the paths handed out go into specs, where a relative one would be
        # resolved against the agent's media_dir instead.
        self.dir = directory.absolute()
        self.policy = LruPolicy(limit)
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self._scan()

    @classmethod
    def for_agent(cls, data_dir: Path) -> MediaCache:
        return cls(data_dir / DIRNAME)

    def path(self, sha: str) -> Path:
        return self.dir / sha

    def set_limit(self, limit: int) -> None:
        """The agent's config changed (read before each request): a smaller limit deletes
        least recently used files at once."""
        self.policy.limit = limit
        self._delete(self.policy.trim(), "the limit shrank")

    def pin(self, holder: str, hashes: Iterable[str]) -> None:
        """Keep ``hashes`` while ``holder`` (a task or job this agent holds) may read them.
        Pin *before* :meth:`ensure`, so a file fetched first is not evicted by a
        concurrent request while the next one is fetched."""
        self.policy.pin(holder, hashes)

    def unpin(self, holder: str) -> None:
        self._delete(self.policy.unpin(holder), "no longer pinned")

    async def acquire(self, holder: str, hashes: Iterable[str], limit: int,
                      fetcher: Fetcher) -> dict[str, Path]:
        """What an engine's task or a runner's job does before it reads its media: pin them
        for ``holder``, take the agent's current ``limit``, fetch what is missing. A fetch
        that fails or is cancelled drops the pin; the holder unpins when it ends."""
        hashes = list(hashes)
        self.pin(holder, hashes)
        self.set_limit(limit)
        try:
            return await self.ensure(hashes, fetcher)
        except BaseException:
            self.unpin(holder)
            raise

    async def ensure(self, hashes: Iterable[str], fetcher: Fetcher) -> dict[str, Path]:
        """The local file of each hash, fetching the missing ones (each once, however many
        requests want it at the same time). The first failure is raised as a
        :class:`MediaError`; files fetched meanwhile stay cached."""
        wanted = list(dict.fromkeys(hashes))
        found = await asyncio.gather(*(self._one(sha, fetcher, wanted) for sha in wanted),
                                     return_exceptions=True)
        for result in found:
            if isinstance(result, BaseException):
                raise result
        return dict(zip(wanted, found, strict=True))  # type: ignore[arg-type]

    async def _one(self, sha: str, fetcher: Fetcher, keep: list[str]) -> Path:
        path = self.path(sha)
        if self.policy.has(sha):
            if path.is_file():
                now = self._clock()
                self.policy.used(sha, now)
                try:
                    os.utime(path, (now, now))  # the last use survives a restart
                except OSError as exc:
                    log.debug("could not mark %s as used: %s", path.name, exc)
                return path
            self.policy.forget(sha)
        running = self._inflight.get(sha)
        if running is None:
            running = asyncio.ensure_future(self._fetch(sha, fetcher, keep))
            self._inflight[sha] = running
            running.add_done_callback(lambda done: self._fetched(sha, done))
        return await asyncio.shield(running)

    def _fetched(self, sha: str, done: asyncio.Future[Path]) -> None:
        if self._inflight.get(sha) is done:
            del self._inflight[sha]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone (a dropped task)

    async def _fetch(self, sha: str, fetcher: Fetcher, keep: list[str]) -> Path:
        path = self.path(sha)
        try:
            info = await fetcher.media_info(sha)
        except ClientError as exc:
            raise MediaError(f"media {short(sha)} could not be fetched from the hub: "
                             f"{exc.message}") from exc
        if info is None:
            raise MediaError(
                f"media {short(sha)} could not be fetched from the hub: 404, the hub has no "
                f"media {sha}; upload the file first (controlroom task reserve uploads a "
                f"spec's local files, or PUT /api/v1/media/{sha})")
        size = int(info.get("bytes") or 0)
        self._delete(self.policy.admit(sha, size, keep), "room for a new file")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            diskspace.check(ROOM, self.dir, need=size)
            with diskspace.guard(ROOM, self.dir):
                await fetcher.fetch_media(sha, path)
        except BaseException as exc:
            self.policy.abandon(sha)
            self._remove_parts(sha)
            if isinstance(exc, diskspace.StorageFull):
                raise MediaError(f"media {short(sha)} could not be fetched: "
                                 f"{exc.message}") from exc
            if isinstance(exc, ClientError):
                cause = exc.__cause__ or exc.__context__
                if exc.status == 507 or (cause is not None and diskspace.is_full(cause)):
                    full = diskspace.StorageFull(ROOM, self.dir)
                    raise MediaError(f"media {short(sha)} could not be fetched: "
                                     f"{full.message}") from exc
                raise MediaError(f"media {short(sha)} could not be fetched from the hub: "
                                 f"{exc.message}") from exc
            if isinstance(exc, OSError):
                raise MediaError(f"media {short(sha)} could not be saved in {self.dir}: "
                                 f"{exc}") from exc
            raise
        try:
            got = path.stat().st_size  # what is on disk is what the limit counts
        except FileNotFoundError:
            self.policy.abandon(sha)
            raise MediaError(f"media {short(sha)}: the fetch reported success but left no "
                             f"file at {path}") from None
        log.info("fetched media %s (%s) into the cache", short(sha), _mb(got))
        self._delete(self.policy.settle(sha, got, self._clock(), keep), "room for a new file")
        if self.policy.total > self.policy.limit:
            log.warning("the media cache holds %s, over its %s limit, because the tasks "
                        "held now pin that much; it shrinks when they end",
                        _mb(self.policy.total), _mb(self.policy.limit))
        return path

    def _scan(self) -> None:
        """Take stock of what an earlier life of the agent left: complete files are cached
        (their modification time is their last use); anything else is a fetch cut short."""
        if not self.dir.is_dir():
            return
        for entry in self.dir.iterdir():
            if _HASH.match(entry.name) and entry.is_file():
                stat = entry.stat()
                self.policy.found(entry.name, stat.st_size, stat.st_mtime)
            elif entry.is_file():
                log.info("removing %s from the media cache: left by a fetch that did not "
                         "finish", entry.name)
                entry.unlink(missing_ok=True)
        # No trim here: the limit is still the default and the running jobs' pins are not
        # back yet (the runner restores them at start); the first set_limit() trims.

    def _remove_parts(self, sha: str) -> None:
        """Whatever a failed fetch of ``sha`` left besides the complete file."""
        if not self.dir.is_dir():
            return
        for entry in self.dir.iterdir():
            if sha in entry.name and entry.name != sha:
                entry.unlink(missing_ok=True)

    def _delete(self, victims: list[str], why: str) -> None:
        for sha in victims:
            log.info("evicting media %s from the cache (%s; least recently used)",
                     short(sha), why)
            self.path(sha).unlink(missing_ok=True)
