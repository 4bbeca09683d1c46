"""The hub's media store: a file under a hash's name is always whole and always that
content; refusals (wrong hash, over the limit, a full disk) leave nothing behind; a start
after a crash puts the folder and the table back in agreement."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend import diskspace
from backend.hub.events import EventLog
from backend.hub.media import MediaError, MediaStore
from backend.hub.schema import MIGRATIONS
from backend.store import Store

DATA = b"RIFF" + bytes(range(256)) * 64
SHA = hashlib.sha256(DATA).hexdigest()


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def never_read() -> AsyncIterator[bytes]:
    raise AssertionError("the body was read")
    yield b""  # pragma: no cover  (makes this an async generator)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    made = Store(tmp_path / "hub.sqlite3", MIGRATIONS)
    await made.open()
    yield made
    await made.close()


async def media_of(store: Store, tmp_path: Path, limit: int = 1 << 20) -> MediaStore:
    media = MediaStore(store, EventLog(store), tmp_path, limit)
    await media.load()
    return media


def files(media: MediaStore) -> list[str]:
    """Everything in the media folder, hidden part files included."""
    return sorted(p.name for p in media.dir.iterdir())


async def rows(store: Store) -> list[tuple[str, int]]:
    return [(r["sha256"], r["bytes"]) for r in await store.query("SELECT * FROM media")]


async def test_an_upload_is_stored_once_under_its_hash(store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    entry, stored = await media.put(SHA, chunks(DATA), len(DATA))
    assert stored and entry.bytes == len(DATA) and entry.created_at > 0
    assert media.path(SHA).read_bytes() == DATA
    assert files(media) == [SHA]
    assert await rows(store) == [(SHA, len(DATA))]
    again, stored = await media.put(SHA, never_read())  # known: answered unread
    assert not stored and again == entry
    with pytest.raises(MediaError) as other_size:  # unread, but it cannot be that file
        await media.put(SHA, never_read(), len(DATA) - 1)
    assert other_size.value.status == 422 and f"{len(DATA)} bytes" in other_size.value.message
    assert files(media) == [SHA]
    events = [e.type for e in await EventLog(store).since(0)]
    assert events == ["media.stored"]


async def test_the_same_content_uploaded_twice_at_once_is_stored_and_recorded_once(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    results = await asyncio.gather(*(media.put(SHA, chunks(DATA, 100)) for _ in range(3)))
    assert sorted(stored for _, stored in results) == [False, False, True]
    assert files(media) == [SHA] and await rows(store) == [(SHA, len(DATA))]
    assert [e.type for e in await EventLog(store).since(0)] == ["media.stored"]


async def test_a_claim_holds_media_while_what_names_it_is_stored(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    with media.claim([SHA, SHA]):
        with media.claim([SHA]):
            assert media.claimed(SHA)
        assert media.claimed(SHA)
    assert not media.claimed(SHA)


async def test_a_body_with_another_hash_is_refused_with_its_real_hash(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    claimed = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(MediaError) as refused:
        await media.put(claimed, chunks(DATA))
    assert refused.value.status == 422
    assert SHA in refused.value.message and f"PUT /api/v1/media/{SHA}" in refused.value.message
    assert files(media) == [] and await rows(store) == []
    assert not media.has(claimed)


async def test_over_the_limit_is_413_declared_or_streamed_and_leaves_nothing(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path, limit=len(DATA) - 1)
    with pytest.raises(MediaError) as declared:
        await media.put(SHA, never_read(), len(DATA))
    assert declared.value.status == 413
    assert "--media-limit-mb" in declared.value.message
    with pytest.raises(MediaError) as streamed:  # no Content-Length: counted as it comes
        await media.put(SHA, chunks(DATA))
    assert streamed.value.status == 413
    assert files(media) == [] and await rows(store) == []


async def test_a_full_disk_is_storage_full_and_leaves_no_part_file(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media = await media_of(store, tmp_path)

    async def full(part: Path, body: AsyncIterator[bytes]) -> tuple[str, int]:
        await asyncio.to_thread(part.write_bytes, b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media, "_receive", full)
    with pytest.raises(diskspace.StorageFull) as refused:
        await media.put(SHA, chunks(DATA))
    assert str(media.dir) in refused.value.message
    assert files(media) == [] and await rows(store) == []


async def test_a_declared_size_beyond_the_free_space_is_refused_before_reading(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path, limit=1 << 62)
    free = diskspace.free_bytes(media.dir)
    with pytest.raises(diskspace.StorageFull):
        await media.put(SHA, never_read(), free + 1)
    assert files(media) == []


async def test_delete_removes_file_and_row_and_unknown_is_404(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    await media.put(SHA, chunks(DATA))
    await media.delete(SHA)
    assert files(media) == [] and await rows(store) == [] and not media.has(SHA)
    with pytest.raises(MediaError) as unknown:
        await media.delete(SHA)
    assert unknown.value.status == 404 and f"PUT /api/v1/media/{SHA}" in unknown.value.message


async def test_a_start_after_a_crash_removes_parts_forgets_lost_files_adopts_renamed_ones(
        store: Store, tmp_path: Path) -> None:
    media = await media_of(store, tmp_path)
    await media.put(SHA, chunks(DATA))
    lost = hashlib.sha256(b"lost").hexdigest()
    await store.execute("INSERT INTO media (sha256, bytes, created_at) VALUES (?, 4, ?)",
                        (lost, time.time()))  # its deletion removed the file, then a stop
    renamed = hashlib.sha256(b"renamed").hexdigest()
    (media.dir / renamed).write_bytes(b"renamed")  # renamed into place, then a stop
    (media.dir / f".{SHA}.abcd.part").write_bytes(b"half")  # an upload cut short

    again = await media_of(store, tmp_path)
    assert sorted(again.entries) == sorted([SHA, renamed])
    assert again.size(renamed) == len(b"renamed") and again.size(lost) == 0
    assert files(again) == sorted([SHA, renamed])
    assert sorted(await rows(store)) == sorted([(SHA, len(DATA)), (renamed, 7)])
