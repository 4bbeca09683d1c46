"""Is a data dir full? One answer for the hub, the node, the runner, the engine and the
console's render cache.

A full disk must not look like a crash: work is refused *before* it starts, with a
sentence naming what is full, where, and what to do (free space there), and everything
already on disk is left as it was. Two ways to find out, used together:

- :func:`check` before accepting work: one ``statvfs`` (a few microseconds), so a full
  disk is refused up front and a half-written file is never made;
- :func:`is_full` / :func:`guard` where the writes happen, because the disk can fill
  between the check and the write (another process, a render larger than the room left):
  ``ENOSPC``/``EDQUOT`` from a file write and SQLite's ``SQLITE_FULL`` ("database or disk
  is full") become a :class:`StorageFull` with the same sentence.

Nothing here is remembered: every check reads the file system again, so each part
recovers by itself the moment space returns, with no restart.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backend.errors import ControlRoomError

__all__ = ["MIN_FREE_BYTES", "Skipped", "StorageFull", "check", "copy_whole", "free_bytes",
           "guard", "is_full", "unless_full"]

#: Less free space than this counts as full: enough for SQLite to commit a few pages and a
#: journal entry to be written, so what is accepted can also be finished.
MIN_FREE_BYTES = 1024 * 1024
#: SQLite's primary result code for "database or disk is full".
SQLITE_FULL = 13
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class StorageFull(ControlRoomError):
    """``what`` (``the hub's data dir``) at ``where`` has no room: the HTTP API answers 507,
    agents report it as the reason. ``message`` says what to do."""

    def __init__(self, what: str, where: Path | str, free: int | None = None) -> None:
        self.what = what
        self.where = str(where)
        self.free = free
        left = "" if free is None else f" ({_size(free)} free)"
        self.message = (f"{what} is full: no space left at {self.where}{left}; free space "
                        f"at {self.where} and try again")
        super().__init__(self.message)


def free_bytes(where: Path | str) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``where``
    (its nearest existing parent, so a dir not made yet is measured where it will be)."""
    path = Path(where)
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def check(what: str, where: Path | str, need: int = 0) -> None:
    """Raise :class:`StorageFull` when ``where`` has less than ``need`` bytes (plus
    :data:`MIN_FREE_BYTES`) free; otherwise return at once."""
    free = free_bytes(where)
    if free < MIN_FREE_BYTES + max(0, need):
        raise StorageFull(what, where, free)


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write failing for want of space: ``ENOSPC``/``EDQUOT`` from the
    OS or ``SQLITE_FULL`` from SQLite (and :class:`StorageFull` itself)."""
    if isinstance(exc, StorageFull):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return bool(code & 0xFF == SQLITE_FULL)
        return "database or disk is full" in str(exc)
    return False


@contextmanager
def guard(what: str, where: Path | str) -> Iterator[None]:
    """Turn a full-disk error raised inside into :class:`StorageFull` naming ``what`` and
    ``where``; every other error passes through unchanged."""
    try:
        yield
    except StorageFull:
        raise
    except (OSError, sqlite3.Error) as exc:
        if is_full(exc):
            raise StorageFull(what, where) from exc
        raise


@dataclass
class Skipped:
    """What :func:`unless_full` swallowed: the full-disk error, or None if the write went."""

    full: BaseException | None = None


@contextmanager
def unless_full(log: logging.Logger, what: str) -> Iterator[Skipped]:
    """Run a write that a full disk may cost without failing the work around it (a record
    of a state change, a token's last use, an auth failure's event): a full disk is logged
    as ``what`` not stored, and said in the yielded :class:`Skipped`; any other error
    propagates."""
    skipped = Skipped()
    try:
        yield skipped
    except Exception as exc:
        if not is_full(exc):
            raise
        skipped.full = exc
        log.warning("%s: not stored, the disk is full (%s)", what, exc)


def copy_whole(source: Path, target: Path, what: str) -> Path:
    """Copy ``source`` to ``target`` whole or not at all (through a hidden ``.part`` in the
    same folder, renamed when complete); a full disk is a :class:`StorageFull` naming
    ``what`` and the folder, with no partial file left behind."""
    part = target.with_name(f".{target.name}.part")
    try:
        with guard(what, target.parent):
            shutil.copyfile(source, part)
            os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"
