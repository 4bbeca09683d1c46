"""A job's local journal on the runner: everything needed to finish it after any crash.

One directory per job under ``<data-dir>/jobs/<id>/``:

- ``payload.json``: the offer as accepted (written and fsynced before anything runs);
- ``media.json``: for a render whose spec names media by hash, ``{"paths": {sha256:
  file}}``, the runner's cached copies, written before the job starts (the job's process
  reads it; a restarted runner pins them while the job runs);
- ``events.jsonl``: the job's reports, one JSON line each, numbered ``seq`` 1, 2, ...;
- ``acked``: the highest ``seq`` the hub acknowledged;
- ``shim.json``: the shim's pid and start time; ``child.json``: the job process's pid;
- ``output.log``, ``exit.json``: written by the shim (:mod:`backend.runner.shim`);
- ``stopping.json``: why the runner stopped the job (``cancel`` or ``timeout``), written
  before the first signal, so the outcome is known even if the runner dies mid-stop.

When the hub has acknowledged the ``ended`` report the directory moves to ``archive/``.
:func:`replay` reads a journal back; it is pure over the lines it is given.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend import diskspace

#: Where a render job finds the media its spec names by hash (see the module's docstring).
MEDIA_FILE = "media.json"


@dataclass
class Replay:
    """What a journal's lines say: the events in order and the last ``seq``."""

    events: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    ended: dict[str, Any] | None = None
    progress: float | None = None


def replay(lines: list[str]) -> Replay:
    """Fold journal lines; a torn last line (a crash mid-write) is ignored."""
    found = Replay()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or int(event.get("seq", 0)) != found.last_seq + 1:
            continue
        found.events.append(event)
        found.last_seq = int(event["seq"])
        if event["event"] == "progress":
            found.progress = event.get("progress")
        elif event["event"] == "ended":
            found.ended = event
    return found


def write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Journal:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.job_id = directory.name
        self._events = directory / "events.jsonl"
        self._cut_torn_tail()
        state = replay(self._lines())
        self.events = state.events
        self.last_seq = state.last_seq
        self.acked = int(read_json(directory / "acked") or 0)

    @classmethod
    def create(cls, root: Path, job_id: str, offer: dict[str, Any]) -> Journal:
        directory = root / job_id
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / "payload.json", offer)
        return cls(directory)

    def _cut_torn_tail(self) -> None:
        """A crash mid-write leaves a line without its newline: cut it, so the next
        report starts on a line of its own."""
        try:
            data = self._events.read_bytes()
        except OSError:
            return
        if data and not data.endswith(b"\n"):
            with self._events.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def _lines(self) -> list[str]:
        try:
            return self._events.read_text().splitlines()
        except OSError:
            return []

    @property
    def offer(self) -> dict[str, Any]:
        return dict(read_json(self.dir / "payload.json") or {})

    @property
    def ended(self) -> dict[str, Any] | None:
        for event in reversed(self.events):
            if event["event"] == "ended":
                return dict(event)
        return None

    def append(self, event: str, ts: float, **data: Any) -> dict[str, Any]:
        """Journal the next report (fsynced: it survives a crash right after)."""
        entry = {"seq": self.last_seq + 1, "event": event, "ts": ts,
                 **{k: v for k, v in data.items() if v is not None}}
        line = memoryview((json.dumps(entry) + "\n").encode())
        fd = os.open(self._events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            try:
                while line:
                    line = line[os.write(fd, line):]
                os.fsync(fd)
            except OSError:  # a full disk: no torn line for the next report to follow
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        self.events.append(entry)
        self.last_seq = entry["seq"]
        return entry

    def unacked(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["seq"] > self.acked]

    def ack(self, seq: int) -> None:
        if seq > self.acked:
            self.acked = seq
            try:
                write_atomic(self.dir / "acked", seq)
            except OSError as exc:
                # The mark only spares resends after a restart (the hub drops repeats by
                # seq): on a full disk it is written with the next ack there is room for.
                if not diskspace.is_full(exc):
                    raise

    @property
    def finished(self) -> bool:
        """The hub has acknowledged how the job ended."""
        ended = self.ended
        return ended is not None and self.acked >= ended["seq"]

    def archive(self, archive_root: Path) -> Path:
        archive_root.mkdir(parents=True, exist_ok=True)
        target = archive_root / self.job_id
        if target.exists():
            shutil.rmtree(target)
        self.dir.rename(target)
        return target


def open_journals(root: Path) -> list[Journal]:
    if not root.exists():
        return []
    return [Journal(d) for d in sorted(root.iterdir())
            if d.is_dir() and (d / "payload.json").exists()]
