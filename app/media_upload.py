"""A spec's local files travel with the task: ``controlroom task reserve`` uploads them.

A spec written on the operator's machine names files there (``"path": "drums.wav"``),
but the engine that plays it, or the runner that renders it, may be on another machine.
So before reserving, every file source whose path names a file that exists *here* is
uploaded to the hub (``HubClient.upload_media``: skipped when the hub has it already) and
named by its SHA-256 in the spec sent; the engine or runner fetches it by that hash.

A relative path is looked for next to the spec file first, then in the current
directory. A path found in neither place is sent as it is: the engine resolves it in its
own ``media_dir`` (files that live on the engine's machine). ``--keep-paths`` sends every
path as it is.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from backend.audio import TaskSpec, file_paths, with_media_hashes
from backend.client import file_sha256

#: Files at least this big get a progress bar while they are hashed.
BIG_BYTES = 64 * 1024 * 1024


class Bar(Protocol):
    """A progress bar (``app.task_cli.ProgressBar``): fractions in, a last line at the end."""

    def __call__(self, fraction: float) -> None: ...

    def done(self, text: str) -> None: ...


class MediaUploader(Protocol):
    """The :class:`backend.client.HubClient` methods this module needs."""

    async def upload_media(self, path: Path, sha256: str | None = None,
                           sending: Callable[[int], object] | None = None,
                           ) -> dict[str, Any]: ...


def local_file(path: str, spec_dir: Path, cwd: Path) -> Path | None:
    """The file ``path`` names on this machine: absolute as it is; relative, next to the
    spec file, else in the current directory; ``None`` when neither has it."""
    named = Path(path).expanduser()
    candidates = [named] if named.is_absolute() else [spec_dir / named, cwd / named]
    return next((c for c in candidates if c.is_file()), None)


def local_files(spec: TaskSpec, spec_dir: Path, cwd: Path) -> dict[str, Path]:
    """Path as written in the spec -> the local file, for each that exists here."""
    found = {}
    for path in file_paths(spec):
        local = local_file(path, spec_dir, cwd)
        if local is not None:
            found[path] = local
    return found


def describe(name: str, size: int, sha: str, uploaded: bool) -> str:
    """The line printed for one file."""
    if uploaded:
        return f"uploaded {name} ({size / 1e6:.1f} MB) as {sha[:6]}…"
    return f"{name} is already on the hub ({sha[:6]}…)"


async def upload_local_files(hub: MediaUploader, spec: TaskSpec, spec_dir: Path,
                             cwd: Path | None = None,
                             bar: Callable[[str], Bar] | None = None,
                             ) -> TaskSpec:
    """Upload each local file the spec names and return the spec naming them by hash.

    One line per file on stderr (stdout stays the task id, for scripts); a bar while a
    big file is hashed, when ``bar`` makes one (given the label).
    """
    files = await asyncio.to_thread(local_files, spec, spec_dir, cwd or Path.cwd())
    hashes: dict[str, str] = {}
    done: dict[Path, str] = {}  # one file named two ways ("a.wav", "./a.wav") goes once
    for written, local in files.items():
        key = await asyncio.to_thread(local.resolve)
        if key not in done:
            done[key] = await _upload_one(hub, local, bar)
        hashes[written] = done[key]
    return with_media_hashes(spec, hashes)


async def _upload_one(hub: MediaUploader, local: Path,
                      bar: Callable[[str], Bar] | None) -> str:
    size = (await asyncio.to_thread(local.stat)).st_size
    big = size >= BIG_BYTES
    progress = bar(f"hashing {local.name}") if bar is not None and big else None
    sha = await asyncio.to_thread(file_sha256, local, progress)
    if progress is not None:
        progress.done(f"{sha[:6]}…")

    def sending(size: int) -> None:  # a big file's wait is worth a word
        if size >= BIG_BYTES:
            print(f"uploading {local.name} ({size / 1e6:.1f} MB)…", file=sys.stderr)

    entry = await hub.upload_media(local, sha, sending)
    print(describe(local.name, int(entry.get("bytes", size)), sha,
                   bool(entry.get("uploaded"))), file=sys.stderr)
    return sha
