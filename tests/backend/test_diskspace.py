"""``backend/diskspace.py``, the store after a full disk, and the 507 gate of the HTTP API.

The pure parts need nothing; the rest fill a real tmpfs (``tests/tmpfs.py``, root only as
in CI), because a mock of ``ENOSPC`` would not show what SQLite or the kernel really do.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from backend import diskspace, problems
from backend.diskspace import StorageFull
from backend.runner.journal import Journal
from backend.store import Store
from tests.tmpfs import mounted


def test_the_sentence_says_what_is_full_where_and_what_to_do() -> None:
    full = StorageFull("the hub's data dir", Path("/srv/hub"), free=512 * 1024)
    assert full.message == ("the hub's data dir is full: no space left at /srv/hub "
                            "(512 KiB free); free space at /srv/hub and try again")
    assert (full.what, full.where) == ("the hub's data dir", "/srv/hub")
    assert "(" not in StorageFull("the cache", "/c").message  # free unknown: not guessed


def test_full_disk_errors_are_recognised_and_nothing_else() -> None:
    assert diskspace.is_full(OSError(errno.ENOSPC, "No space left on device"))
    assert diskspace.is_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert diskspace.is_full(sqlite3.OperationalError("database or disk is full"))
    assert diskspace.is_full(StorageFull("x", "/x"))
    assert not diskspace.is_full(OSError(errno.EACCES, "Permission denied"))
    assert not diskspace.is_full(sqlite3.OperationalError("database is locked"))
    assert not diskspace.is_full(ValueError("database or disk is full"))


def test_check_measures_the_nearest_existing_dir_and_needs_room_for_the_work(
        tmp_path: Path) -> None:
    later = tmp_path / "not" / "made" / "yet"
    assert diskspace.free_bytes(later) == diskspace.free_bytes(tmp_path) > 0
    diskspace.check("the test dir", later)  # room enough: returns
    with pytest.raises(StorageFull) as refused:
        diskspace.check("the test dir", later, need=1 << 62)
    assert refused.value.where == str(later) and refused.value.free is not None


def test_guard_names_the_dir_for_a_full_disk_and_lets_other_errors_through() -> None:
    with pytest.raises(StorageFull) as caught, diskspace.guard("the cache", "/c"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.message.startswith("the cache is full: no space left at /c")
    with pytest.raises(PermissionError), diskspace.guard("the cache", "/c"):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_changes_are_documented_with_507_and_reads_are_not() -> None:
    assert 507 in problems.default_statuses("post", "/api/v1/tasks")
    assert 507 in problems.default_statuses("delete", "/api/v1/tokens/{name}")
    assert 507 not in problems.default_statuses("get", "/api/v1/tasks/{task_id}")


def test_a_real_full_disk_fills_a_file_and_the_checks_see_it(tmp_path: Path) -> None:
    with mounted(tmp_path / "fs", 2) as disk:
        disk.fill()
        assert disk.available() == 0
        with pytest.raises(StorageFull) as refused:
            diskspace.check("the small disk", disk.path)
        assert refused.value.free == 0
        with pytest.raises(StorageFull), diskspace.guard("the small disk", disk.path):
            (disk.path / "more.bin").write_bytes(b"x" * 65536)
        disk.free()
        diskspace.check("the small disk", disk.path)  # room again, nothing remembered


def test_the_store_works_again_after_a_write_refused_by_a_full_disk(tmp_path: Path) -> None:
    """Regression: SQLite kept the failed transaction open, so every later write failed
    with "cannot start a transaction within a transaction" after space returned."""

    async def scenario(disk_path: Path, fill: object, free: object) -> list[int]:
        store = Store(disk_path / "s.sqlite3", [["CREATE TABLE t (n INTEGER, pad BLOB)"]])
        await store.open()
        try:
            await store.executemany("INSERT INTO t VALUES (?, ?)", [(1, b"")])
            fill()  # type: ignore[operator]
            with pytest.raises(sqlite3.OperationalError) as refused:
                await store.executemany("INSERT INTO t VALUES (?, ?)",
                                        [(n, b"\0" * 65536) for n in range(2, 10)])
            assert diskspace.is_full(refused.value)
            assert [r["n"] for r in await store.query("SELECT n FROM t")] == [1]  # reads
            free()  # type: ignore[operator]
            await store.executemany("INSERT INTO t VALUES (?, ?)", [(2, b""), (3, b"")])
            return [r["n"] for r in await store.query("SELECT n FROM t ORDER BY n")]
        finally:
            await store.close()

    with mounted(tmp_path / "fs", 2) as disk:
        assert asyncio.run(scenario(disk.path, disk.fill, disk.free)) == [1, 2, 3]


def test_the_gate_refuses_changes_on_a_full_disk_with_507_and_lets_reads_through(
        tmp_path: Path) -> None:
    with mounted(tmp_path / "fs", 4) as disk:
        app = FastAPI()
        problems.install(app, storage=[("/", "the test's data dir", disk.path)])

        @app.get("/things")
        async def things() -> list[str]:
            return ["a"]

        @app.post("/things")
        async def add() -> dict[str, str]:
            return {"added": "b"}

        @app.post("/things/stop")
        async def stop() -> dict[str, str]:
            return {"stopped": "yes"}

        @app.post("/write")
        async def write() -> None:
            (disk.path / "written.bin").write_bytes(b"x" * (2 << 20))

        async def scenario() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                disk.fill()
                refused = await client.post("/things")
                assert refused.status_code == 507
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["where"] == str(disk.path)
                assert refused.json()["detail"].startswith(
                    f"the test's data dir is full: no space left at {disk.path}")
                assert (await client.get("/things")).json() == ["a"]
                assert (await client.post("/things/stop")).status_code == 200  # winding down
                disk.free()
                assert (await client.post("/things")).status_code == 200
                # Room enough to pass the check, not for the write: 507 too, not a 500.
                pad = disk.available() - diskspace.MIN_FREE_BYTES - (256 << 10)
                (disk.path / "pad.bin").write_bytes(b"\0" * pad)
                late = await client.post("/write")
                assert late.status_code == 507, late.text
                assert late.json()["where"] == str(disk.path)

        asyncio.run(scenario())


def test_a_journal_append_refused_by_a_full_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    """A runner's report that does not fit is not half-written: the next one, once there
    is room, starts on a line of its own and the journal replays both."""
    with mounted(tmp_path / "fs", 2) as disk:
        journal = Journal.create(disk.path / "jobs", "j_1", {"kind": "command"})
        journal.append("accepted", 1.0)
        disk.fill()
        with pytest.raises(OSError) as refused:  # larger than a page: it cannot fit
            journal.append("progress", 2.0, note="x" * 20000)
        assert diskspace.is_full(refused.value)
        assert (journal.dir / "events.jsonl").read_bytes().endswith(b"\n")
        disk.free()
        journal.append("started", 3.0)
        again = Journal(journal.dir)
        assert [e["event"] for e in again.events] == ["accepted", "started"]
        assert again.last_seq == 2


def test_a_copy_is_whole_or_not_there_and_a_full_folder_is_named(tmp_path: Path) -> None:
    """"Save render as…" into a full folder: the sentence, no partial file; then it works."""
    source = tmp_path / "render.wav"
    source.write_bytes(b"RIFF" + bytes(range(256)) * 4096)  # 1 MiB
    with mounted(tmp_path / "fs", 4) as disk:
        target = disk.path / "saved.wav"
        disk.fill()
        with pytest.raises(StorageFull) as refused:
            diskspace.copy_whole(source, target, "the folder the render is saved to")
        assert refused.value.message.startswith(
            f"the folder the render is saved to is full: no space left at {disk.path}")
        assert sorted(p.name for p in disk.path.iterdir()) == ["filler.bin"]
        disk.free()
        assert diskspace.copy_whole(source, target, "x") == target
        assert target.read_bytes() == source.read_bytes()
        assert sorted(p.name for p in disk.path.iterdir()) == ["saved.wav"]
