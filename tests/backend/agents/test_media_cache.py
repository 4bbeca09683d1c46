"""The agents' media cache: the LRU policy on plain values, then the cache on real files
in tmp_path with a fake hub (no sockets)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from backend.agents.media_cache import (
    CONFIG_KEY,
    MB,
    LruPolicy,
    MediaCache,
    MediaError,
    limit_bytes,
)
from backend.client import HubError

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


# --- the policy: events in, decisions out ---------------------------------------------


def _policy(limit: int, **files: tuple[int, float]) -> LruPolicy:
    policy = LruPolicy(limit)
    for sha, (size, used) in files.items():
        policy.found(sha, size, used)
    return policy


def test_nothing_is_evicted_while_the_new_file_fits() -> None:
    policy = _policy(100, **{A: (40, 1.0)})
    assert policy.admit(B, 60) == []
    assert policy.total == 100


def test_the_least_recently_used_go_first_and_no_more_than_needed() -> None:
    policy = _policy(100, **{A: (30, 3.0), B: (30, 1.0), C: (30, 2.0)})
    policy.used(B, 4.0)  # used again: C is now the least recently used
    assert policy.admit(D, 40) == [C]
    assert set(policy.entries) == {A, B}
    assert policy.settle(D, 40, 5.0) == []
    assert policy.total == 100


def test_pinned_files_and_the_requests_own_files_are_never_evicted() -> None:
    policy = _policy(100, **{A: (40, 1.0), B: (40, 2.0), C: (20, 3.0)})
    policy.pin("task-1", [A])
    assert policy.admit(D, 30, keep=[B]) == [C]
    # Pinned files alone pass the limit: the cache goes over rather than refuse work...
    assert policy.total == 110
    # ...and shrinks back when they are unpinned.
    assert policy.unpin("task-1") == [A]
    assert policy.total == 70


def test_a_pin_is_per_holder_and_replaced_by_the_same_holder() -> None:
    policy = LruPolicy(100)
    policy.pin("t1", [A, B])
    policy.pin("t2", [B])
    policy.pin("t1", [C])
    assert policy.pinned() == {B, C}
    policy.unpin("t2")
    assert policy.pinned() == {C}


def test_a_file_larger_than_the_whole_cache_names_the_limit_and_the_key() -> None:
    policy = LruPolicy(10 * MB)
    with pytest.raises(MediaError) as caught:
        policy.admit(A, 25 * MB)
    message = caught.value.message
    assert "25.0 MB" in message and "media_cache_mb = 10" in message
    assert "raise media_cache_mb in the agent's config to at least 26" in message
    assert policy.reserved == {}


def test_fetches_under_way_count_towards_the_limit() -> None:
    policy = _policy(100, **{A: (50, 1.0)})
    assert policy.admit(B, 40) == []
    assert policy.admit(C, 40) == [A]  # B's 40 are promised already
    policy.abandon(B)
    assert policy.total == 40


def test_a_file_larger_than_announced_evicts_on_settling() -> None:
    policy = _policy(100, **{A: (50, 1.0)})
    assert policy.admit(B, 50) == []
    assert policy.settle(B, 60, 2.0) == [A]


def test_the_limit_comes_from_the_agents_config() -> None:
    assert limit_bytes({}) == 4096 * MB
    assert limit_bytes({CONFIG_KEY: 1.5}) == 1_500_000
    for bad in (0, -3, "lots", None, float("inf")):
        with pytest.raises(MediaError, match="media_cache_mb must be a positive number"):
            limit_bytes({CONFIG_KEY: bad})


# --- the cache on files, with a fake hub ----------------------------------------------------


class FakeHub:
    """``media_info`` / ``fetch_media`` as HubClient has them, over a dict of bytes."""

    def __init__(self, media: dict[str, bytes], delay: float = 0.0) -> None:
        self.media = media
        self.delay = delay
        self.fetches: list[str] = []
        self.fail: BaseException | None = None

    async def media_info(self, sha256: str) -> dict[str, Any] | None:
        data = self.media.get(sha256)
        return None if data is None else {"sha256": sha256, "bytes": len(data)}

    async def fetch_media(self, sha256: str, dest: Path) -> int:
        self.fetches.append(sha256)
        part = dest.with_name(f"{dest.name}.part")
        part.write_bytes(self.media[sha256][:3])  # half-way...
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        part.write_bytes(self.media[sha256])
        assert hashlib.sha256(part.read_bytes()).hexdigest() == sha256
        os.replace(part, dest)
        return len(self.media[sha256])


def _media(*contents: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(c).hexdigest(): c for c in contents}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


async def test_fetches_once_then_serves_from_the_folder(tmp_path: Path) -> None:
    media = _media(b"one" * 100, b"two" * 100)
    hub = FakeHub(media)
    cache = MediaCache(tmp_path / "media-cache", limit=10_000, clock=Clock())
    first = await cache.ensure(list(media), hub)
    assert {sha: p.read_bytes() for sha, p in first.items()} == media
    assert all(p.parent == tmp_path / "media-cache" and p.name == sha
               for sha, p in first.items())
    again = await cache.ensure(list(media), hub)
    assert again == first
    assert sorted(hub.fetches) == sorted(media)  # once each


async def test_concurrent_requests_for_one_hash_share_one_fetch(tmp_path: Path) -> None:
    media = _media(b"shared" * 50)
    hub = FakeHub(media, delay=0.05)
    cache = MediaCache(tmp_path, limit=10_000)
    results = await asyncio.gather(*(cache.ensure(list(media), hub) for _ in range(5)))
    assert hub.fetches == list(media)
    assert len({tuple(r.values()) for r in results}) == 1


async def test_least_recently_used_files_are_deleted_but_not_pinned_ones(
        tmp_path: Path) -> None:
    one, two, three = b"1" * 400, b"2" * 400, b"3" * 400
    media = _media(one, two, three)
    s1, s2, s3 = list(media)
    hub = FakeHub(media)
    cache = MediaCache(tmp_path, limit=1000, clock=Clock())
    cache.pin("task-1", [s1])
    await cache.ensure([s1], hub)
    await cache.ensure([s2], hub)
    await cache.ensure([s3], hub)  # s1 is older, but pinned: s2 goes
    assert _names(tmp_path) == sorted([s1, s3])
    cache.unpin("task-1")  # within the limit: nothing more to delete
    await cache.ensure([s2], hub)  # now s1 is the least recently used
    assert _names(tmp_path) == sorted([s2, s3])


async def test_last_use_and_leftovers_survive_a_restart(tmp_path: Path) -> None:
    media = _media(b"x" * 400, b"y" * 400)
    old, recent = list(media)
    hub = FakeHub(media)
    cache = MediaCache(tmp_path, limit=1000)
    await cache.ensure([old], hub)
    await cache.ensure([recent], hub)
    os.utime(tmp_path / old, (1000.0, 1000.0))
    os.utime(tmp_path / recent, (2000.0, 2000.0))
    (tmp_path / f"{old}.part").write_bytes(b"cut short")
    (tmp_path / ".tmp-download").write_bytes(b"cut short")

    restarted = MediaCache(tmp_path, limit=1000)
    assert _names(tmp_path) == sorted(media)
    restarted.set_limit(500)  # a smaller limit from the config: the older one goes
    assert _names(tmp_path) == [recent]


async def test_a_restart_over_the_default_limit_deletes_nothing_before_the_pins_are_back(
        tmp_path: Path) -> None:
    media = _media(b"x" * 400, b"y" * 400, b"z" * 400)
    hub = FakeHub(media)
    cache = MediaCache(tmp_path, limit=2000)
    for sha in media:
        await cache.ensure([sha], hub)
    oldest = sorted(media, key=lambda sha: (tmp_path / sha).stat().st_mtime)[0]
    restarted = MediaCache(tmp_path, limit=500)  # the default, before the config is read
    assert _names(tmp_path) == sorted(media)  # a running job's files among them
    restarted.pin("j_1", [oldest])
    restarted.set_limit(500)
    assert _names(tmp_path) == [oldest]


async def test_a_file_bigger_than_the_cache_is_refused_before_fetching(tmp_path: Path) -> None:
    media = _media(b"z" * 3 * MB)
    hub = FakeHub(media)
    cache = MediaCache(tmp_path, limit=2 * MB)
    with pytest.raises(MediaError, match="more than the whole media cache"):
        await cache.ensure(list(media), hub)
    assert hub.fetches == []


async def test_media_the_hub_does_not_have(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path)
    with pytest.raises(MediaError) as caught:
        await cache.ensure(["f" * 64], FakeHub({}))
    assert caught.value.message.startswith("media ffffffffffff… could not be fetched from the "
                                           "hub: 404")
    assert "upload the file first" in caught.value.message


async def test_a_refused_fetch_says_what_the_hub_said_and_leaves_nothing(
        tmp_path: Path) -> None:
    media = _media(b"secret" * 10)
    hub = FakeHub(media)
    hub.fail = HubError(401, "agent credentials refused")
    cache = MediaCache(tmp_path)
    with pytest.raises(MediaError, match="could not be fetched from the hub: agent "
                                         "credentials refused"):
        await cache.ensure(list(media), hub)
    assert _names(tmp_path) == []
    assert cache.policy.total == 0


async def test_a_full_disk_while_fetching_is_named_and_the_part_removed(
        tmp_path: Path) -> None:
    media = _media(b"w" * 1000)
    hub = FakeHub(media)
    hub.fail = OSError(errno.ENOSPC, "No space left on device")
    cache = MediaCache(tmp_path)
    with pytest.raises(MediaError) as caught:
        await cache.ensure(list(media), hub)
    assert "the agent's media cache is full: no space left at" in caught.value.message
    assert "free space" in caught.value.message
    assert _names(tmp_path) == []  # the part file is gone
    hub.fail = None  # space is back: the next request fetches
    paths = await cache.ensure(list(media), hub)
    assert next(iter(paths.values())).read_bytes() == b"w" * 1000


def test_paths_are_absolute_even_for_a_relative_data_dir() -> None:
    """They go into specs, where a relative path would be looked up in the media_dir."""
    cache = MediaCache.for_agent(Path("agents/engine-1"))
    assert cache.path(A).is_absolute() and cache.path(A).parts[-2:] == ("media-cache", A)
