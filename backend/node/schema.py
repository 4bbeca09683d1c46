"""The node's SQLite schema, one migration per version (applied by :class:`~backend.store.Store`).

``events`` holds every run's stream; ``(fid, offset)`` is its key, so an SSE id is simply
the offset within the run's stream. ``wseq`` is the worker's own number for an event it
sent, kept so a worker that reconnects after a node restart resends only what was not
committed (exactly once). ``runs`` holds what is not an event: the worker's process id and
the digest of the run's worker token.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            fid TEXT PRIMARY KEY,
            flow TEXT NOT NULL,
            created_at REAL NOT NULL,
            token_digest TEXT NOT NULL,
            pid INTEGER,
            pid_started REAL,
            final TEXT
        )""",
        """CREATE TABLE events (
            fid TEXT NOT NULL,
            offset INTEGER NOT NULL,
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            wseq INTEGER,
            PRIMARY KEY (fid, offset)
        ) WITHOUT ROWID""",
    ],
]
