"""SQLite in WAL mode behind one worker thread.

The hub's components, configs, enrollments, agent credentials and event log live in
``<data-dir>/hub.sqlite3``. One connection on one thread does every read and write, so
writes never contend and the event loop never blocks on disk. The schema is versioned:
``migrations`` lists the steps in order and :meth:`Store.open` applies the missing ones.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

Migration = Sequence[str]


class Store:
    def __init__(self, path: Path, migrations: Sequence[Migration]) -> None:
        self.path = path
        self._migrations = migrations
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._call(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, steps in enumerate(self._migrations, start=1):
            if number <= version:
                continue
            with _transaction(db):
                for statement in steps:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the last inserted row id."""
        return await self._call(lambda: self._conn.execute(sql, params).lastrowid or 0)

    async def update(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one UPDATE or DELETE; returns how many rows it changed."""
        return await self._call(lambda: self._conn.execute(sql, params).rowcount)

    async def execute_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run ``(sql, params)`` statements in one transaction, all or none (a change and
        the event that announces it must not be split by a kill between two writes);
        returns each one's last inserted row id."""
        def run() -> list[int]:
            db = self._conn
            with _transaction(db):
                return [db.execute(sql, params).lastrowid or 0 for sql, params in statements]

        return await self._call(run)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        def run() -> None:
            db = self._conn
            with _transaction(db):
                db.executemany(sql, rows)

        await self._call(run)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._call(lambda: self._conn.execute(sql, params).fetchall())

    async def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self.query(sql, params)
        return rows[0] if rows else None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN`` ... ``COMMIT``, rolled back when anything inside fails.

    SQLite leaves a transaction open after a statement in it fails (a full disk's
    ``SQLITE_FULL`` is the usual one): without the rollback every later ``BEGIN`` on this
    one connection fails with "cannot start a transaction within a transaction", so the
    store would stay broken after space returned.
    """
    db.execute("BEGIN")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
