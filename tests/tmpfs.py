"""A real small file system to fill: a ``tmpfs`` mounted under the test's tmp dir.

The full-disk tests (``tests/integration/test_full_disk.py``, the console's render cache
test) make a data dir run out of space for real, not with a mock: :func:`mounted` mounts a
tmpfs of a few MiB (root only; CI runs as root), :meth:`Tmpfs.fill` writes a filler file
until the kernel answers ``ENOSPC``, :meth:`Tmpfs.free` deletes it again. The mount is
always undone, also when the test fails (a lazy unmount if a process still holds a file).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHUNK = 256 * 1024


def skip_unless_root() -> None:
    """Mounting needs root: skip with the reason elsewhere (CI runs these as root)."""
    if os.geteuid() != 0:
        pytest.skip("the full-disk tests mount a tmpfs, which needs root (CI runs them as "
                    "root)")


class Tmpfs:
    """A mounted tmpfs at ``path``; ``filler`` is the file that makes it full."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def available(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self) -> None:
        """Write the filler until the file system has not one byte left."""
        block = b"\0" * CHUNK
        with open(self.filler, "ab", buffering=0) as handle:
            size = CHUNK
            while size:
                try:
                    handle.write(block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2
        assert self.available() == 0, f"{self.path} still has {self.available()} bytes free"

    def free(self) -> None:
        """Give the space back (delete the filler)."""
        self.filler.unlink(missing_ok=True)


@contextmanager
def mounted(path: Path, size_mb: int) -> Iterator[Tmpfs]:
    skip_unless_root()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                   check=True, capture_output=True)
    try:
        yield Tmpfs(path)
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True)
        if done.returncode != 0:  # a process of the test still holds a file there
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
