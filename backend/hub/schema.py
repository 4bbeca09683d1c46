"""The hub's SQLite schema, one migration per version (applied by :class:`Store`)."""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE components (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            agent_id TEXT,
            state TEXT NOT NULL,
            static_config TEXT NOT NULL DEFAULT '{}',
            config TEXT NOT NULL DEFAULT '{}',
            last_seen REAL,
            rtt_ms REAL,
            report TEXT,
            registered_at REAL
        )""",
        """CREATE TABLE configs (
            id TEXT PRIMARY KEY,
            config TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE enrollments (
            token_digest TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL,
            used_by TEXT
        )""",
        """CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            secret_digest TEXT NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
    ],
]

# Version 2: audio tasks, as events folded into state (backend/hub/tasks/state.py).
MIGRATIONS.append(
    [
        """CREATE TABLE task_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id TEXT NOT NULL,
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX task_events_by_task ON task_events (task_id, id)",
    ]
)

# Version 3: runner jobs as events folded into state (backend/hub/jobs/state.py), and
# what runners report about themselves (backend/hub/jobs/runners.py).
MIGRATIONS.append(
    [
        """CREATE TABLE job_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL,
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX job_events_by_job ON job_events (job_id, id)",
        """CREATE TABLE runners (
            id TEXT PRIMARY KEY,
            phase TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '[]',
            hardware TEXT NOT NULL DEFAULT '{}',
            digest TEXT NOT NULL DEFAULT '',
            free TEXT NOT NULL DEFAULT '{}',
            last_heartbeat REAL,
            revoked_at REAL
        )""",
    ]
)

# Version 4: named API tokens (backend/hub/named_tokens.py): operator or viewer, stored as
# digests only, revocable at once.
MIGRATIONS.append(
    [
        """CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used_at REAL
        )""",
    ]
)

# Version 5: content-addressed media (backend/hub/media.py): the file is
# <data-dir>/media/<sha256>; the row says how big it is and when it was stored.
MIGRATIONS.append(
    [
        """CREATE TABLE media (
            sha256 TEXT PRIMARY KEY,
            bytes INTEGER NOT NULL,
            created_at REAL NOT NULL
        )""",
    ]
)
