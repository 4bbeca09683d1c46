"""A run's state is a fold of its events: the one source of truth, free of I/O.

The node keeps one :class:`RunState` per run and applies each event the moment it is
committed to the store; after a restart it folds the stored stream again and gets the same
state. A parent flow folds its children's streams with the same code, which is how a
child's open lock becomes visible (and answerable) from the parent.

Event types and who writes them:

=============  ======  ============================================================
type           writer  data
=============  ======  ============================================================
``status``     both    ``{state: pending, flow, inputs}`` (node, at launch);
                       ``{state: running, pid}`` (worker, when the flow starts)
``progress``   worker  ``{value: 0..1, message?}``
``log``        worker  ``{level, message}``
``lock``       worker  ``{lid, prompt, schema, opened_at, no_candidate_timeout,
                       release_timeout, initial}``
``candidate``  node    ``{lid, cid, value}`` (already valid against the lock's schema)
``release``    worker  ``{lid, cid, value}`` (the value the flow accepted)
``deny``       worker  ``{lid, cid, reason}``
``expire``     worker  ``{lid, reason}`` (no acceptable candidate in time)
``child``      worker  ``{node, fid, flow, state, locks, result?, error?}`` (nested run)
``result``     worker  ``{value}``
``error``      both    ``{message, exit_code?, stderr?, traceback?}``
``final``      node    ``{state: done|error|cancelled|interrupted, reason?}``
=============  ======  ============================================================

Nothing after ``final`` changes the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from backend.node.locks import LockBook, Verdict

RunStatus = Literal["pending", "running", "locked", "done", "error", "cancelled", "interrupted"]
FINAL_STATES: frozenset[str] = frozenset({"done", "error", "cancelled", "interrupted"})
EVENT_TYPES: tuple[str, ...] = (
    "status", "progress", "log", "lock", "candidate", "release", "deny", "expire", "child",
    "result", "error", "final",
)
#: What a worker may write; the rest are the node's.
WORKER_EVENT_TYPES: frozenset[str] = frozenset({
    "status", "progress", "log", "lock", "release", "deny", "expire", "child", "result",
    "error",
})


@dataclass(frozen=True)
class RunEvent:
    """One event of a run's stream; ``offset`` numbers it from 1 within that stream."""

    offset: int
    ts: float
    type: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "ts": self.ts, "type": self.type, "data": self.data}


@dataclass
class RunState:
    fid: str
    flow: str = ""
    phase: Literal["pending", "running"] = "pending"
    final: str | None = None
    reason: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    progress: float | None = None
    message: str | None = None
    result: Any = None
    has_result: bool = False
    error: dict[str, Any] | None = None
    pid: int | None = None
    parent: dict[str, Any] | None = None
    offset: int = 0
    lock_book: LockBook = field(default_factory=LockBook)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- the fold ---------------------------------------------------------------------

    def apply(self, event: RunEvent) -> list[Verdict]:
        """Fold one event in; returns the lock verdicts it decided."""
        if event.offset <= self.offset:
            return []  # already folded (a replay)
        self.offset = event.offset
        if self.final is not None:
            return []
        self.updated_at = event.ts
        data, kind = event.data, event.type
        if kind == "status":
            if data.get("state") == "pending":
                self.flow = str(data.get("flow", self.flow))
                self.created_at = event.ts
                self.parent = data.get("parent")
            elif data.get("state") == "running":
                self.phase = "running"
                self.pid = data.get("pid", self.pid)
        elif kind == "progress":
            self.progress = data.get("value")
            self.message = data.get("message", self.message)
        elif kind == "child":
            key = f"{data.get('node')}/{data.get('fid')}"
            self.children[key] = dict(data)
        elif kind == "result":
            self.result = data.get("value")
            self.has_result = True
        elif kind == "error":
            self.error = dict(data)
        elif kind == "final":
            self.final = str(data.get("state", "error"))
            self.reason = data.get("reason")
            if self.final in ("error", "interrupted") and self.error is None:
                self.error = {"message": self.reason or "the run failed"}
        return self.lock_book.apply(kind, data, event.ts)

    # -- derived views ----------------------------------------------------------------

    def child_locks(self) -> list[dict[str, Any]]:
        """Open locks of children (and their children), each naming its node and run."""
        found: list[dict[str, Any]] = []
        for child in self.children.values():
            if child.get("state") in FINAL_STATES:
                continue
            for lock in child.get("locks") or []:
                entry = dict(lock)
                entry.setdefault("node", child.get("node"))
                entry.setdefault("fid", child.get("fid"))
                found.append(entry)
        return found

    def own_locks(self) -> list[dict[str, Any]]:
        return [
            {"lid": lock.lid, "prompt": lock.prompt, "schema": lock.schema,
             "deadline": lock.deadline, "opened_at": lock.opened_at,
             "release_timeout": lock.release_timeout, "initial": lock.initial,
             "fid": self.fid}
            for lock in self.lock_book.open_locks()
        ]

    def locks(self) -> list[dict[str, Any]]:
        return self.own_locks() + self.child_locks()

    def find_child_lock(self, lid: str) -> dict[str, Any] | None:
        for lock in self.child_locks():
            if lock.get("lid") == lid:
                return lock
        return None

    @property
    def state(self) -> RunStatus:
        if self.final is not None:
            return self.final  # type: ignore[return-value]
        if self.lock_book.open_locks() or self.child_locks():
            return "locked"
        return self.phase

    @property
    def done(self) -> bool:
        return self.final is not None

    def view(self) -> dict[str, Any]:
        """The run as ``GET /node/v1/runs/{fid}`` shows it (the contract's names)."""
        return {
            "fid": self.fid, "flow": self.flow, "state": self.state,
            "locks": self.locks(),
            "children": [
                {"node": c.get("node"), "fid": c.get("fid"), "flow": c.get("flow"),
                 "state": c.get("state"), "locks": c.get("locks") or []}
                for c in self.children.values()
            ],
            "result": self.result, "error": self.error, "reason": self.reason,
            "progress": self.progress, "message": self.message, "pid": self.pid,
            "parent": self.parent, "created_at": self.created_at,
            "updated_at": self.updated_at, "offset": self.offset,
        }

    def summary(self) -> dict[str, Any]:
        """What a parent records about this run as its child (in a ``child`` event)."""
        out: dict[str, Any] = {"state": self.state, "locks": self.locks()}
        if self.final == "done":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


def fold(fid: str, events: list[RunEvent]) -> RunState:
    """The state after ``events`` (in order)."""
    state = RunState(fid)
    for event in events:
        state.apply(event)
    return state
