"""The lock state machine: demands, candidates and verdicts, folded from a run's events.

A flow that needs a human opens a **lock** (a prompt and a JSON Schema). Operators submit
**candidates**; the flow **releases** the lock with one of them or **denies** it with a
reason and keeps waiting; a lock with no acceptable candidate before its
``no-candidate-timeout`` **expires**. Every one of those is an event in the run's stream,
so this module never sees a socket or a clock: :meth:`LockBook.apply` takes one event and
returns the :class:`Verdict` of each candidate that event decided, which the HTTP layer
hands to the client waiting on it (or a 504 if none comes within ``release-timeout``).

States of a lock: ``open`` -> ``released`` | ``expired`` | ``closed`` (the run ended).
States of a candidate: ``pending`` -> ``released`` | ``denied`` | ``superseded`` (another
candidate won, the lock expired, or the run ended before the flow answered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LockStatus = Literal["open", "released", "expired", "closed"]
CandidateStatus = Literal["pending", "released", "denied", "superseded"]

#: Defaults of the contract (docs/flows.md): a client waits a minute for a verdict, a flow
#: three hours for a candidate; both can be set per lock.
DEFAULT_RELEASE_TIMEOUT_S = 60.0
DEFAULT_NO_CANDIDATE_TIMEOUT_S = 3 * 3600.0


@dataclass
class Candidate:
    cid: str
    lid: str
    value: Any
    status: CandidateStatus = "pending"
    reason: str | None = None
    accepted: Any = None


@dataclass(frozen=True)
class Verdict:
    """How a candidate ended, as the client that submitted it is told."""

    cid: str
    lid: str
    status_code: int  # 200 released, 422 denied, 409 superseded
    body: dict[str, Any]


@dataclass
class Lock:
    lid: str
    prompt: str
    schema: dict[str, Any]
    opened_at: float
    no_candidate_timeout: float
    release_timeout: float
    initial: bool = False
    status: LockStatus = "open"
    reason: str | None = None
    accepted: Any = None
    candidates: dict[str, Candidate] = field(default_factory=dict)

    @property
    def deadline(self) -> float:
        """Wall-clock time when the flow stops waiting for an acceptable candidate."""
        return self.opened_at + self.no_candidate_timeout

    def demand(self) -> dict[str, Any]:
        """What ``GET .../lock/{lid}/candidate`` returns."""
        return {
            "lid": self.lid, "prompt": self.prompt, "schema": self.schema,
            "status": self.status, "opened_at": self.opened_at, "deadline": self.deadline,
            "release_timeout": self.release_timeout,
            "no_candidate_timeout": self.no_candidate_timeout, "initial": self.initial,
            "denied": [
                {"cid": c.cid, "reason": c.reason}
                for c in self.candidates.values() if c.status == "denied"
            ],
        }


@dataclass(frozen=True)
class Admission:
    """Whether a candidate may be submitted to a lock; if not, the HTTP status and why."""

    ok: bool
    status_code: int = 200
    detail: str = ""


class LockBook:
    """Every lock of one run and the fate of each candidate."""

    def __init__(self) -> None:
        self.locks: dict[str, Lock] = {}

    # -- folding events ---------------------------------------------------------------

    def apply(self, type: str, data: dict[str, Any], ts: float) -> list[Verdict]:
        """Fold one event; return the verdicts it decided (empty for most events)."""
        if type == "lock":
            self.locks[data["lid"]] = Lock(
                lid=data["lid"], prompt=data.get("prompt", ""),
                schema=data.get("schema") or {}, opened_at=float(data.get("opened_at", ts)),
                no_candidate_timeout=float(
                    data.get("no_candidate_timeout", DEFAULT_NO_CANDIDATE_TIMEOUT_S)),
                release_timeout=float(data.get("release_timeout", DEFAULT_RELEASE_TIMEOUT_S)),
                initial=bool(data.get("initial", False)),
            )
            return []
        if type == "candidate":
            lock = self.locks.get(data["lid"])
            if lock is None:
                return []
            lock.candidates[data["cid"]] = Candidate(data["cid"], lock.lid, data.get("value"))
            if lock.status != "open":  # raced with the end of the lock: decided at once
                return [self._supersede(lock.candidates[data["cid"]], lock)]
            return []
        if type == "release":
            return self._release(data)
        if type == "deny":
            return self._deny(data)
        if type == "expire":
            lock = self.locks.get(data["lid"])
            if lock is None or lock.status != "open":
                return []
            lock.status = "expired"
            lock.reason = data.get("reason") or "no acceptable candidate in time"
            return self._supersede_pending(lock)
        if type == "final":
            verdicts: list[Verdict] = []
            for lock in self.locks.values():
                if lock.status == "open":
                    lock.status = "closed"
                    lock.reason = f"the run ended ({data.get('state', 'final')})"
                    verdicts += self._supersede_pending(lock)
            return verdicts
        return []

    def _release(self, data: dict[str, Any]) -> list[Verdict]:
        lock = self.locks.get(data["lid"])
        if lock is None or lock.status != "open":
            return []
        lock.status = "released"
        lock.accepted = data.get("value")
        verdicts: list[Verdict] = []
        cid = data.get("cid")
        candidate = lock.candidates.get(cid) if cid else None
        if candidate is not None and candidate.status == "pending":
            candidate.status = "released"
            candidate.accepted = lock.accepted
            verdicts.append(Verdict(candidate.cid, lock.lid, 200, {
                "lid": lock.lid, "cid": candidate.cid, "released": True,
                "accepted": lock.accepted,
            }))
        return verdicts + self._supersede_pending(lock)

    def _deny(self, data: dict[str, Any]) -> list[Verdict]:
        lock = self.locks.get(data["lid"])
        candidate = lock.candidates.get(data.get("cid", "")) if lock else None
        if lock is None or candidate is None or candidate.status != "pending":
            return []
        candidate.status = "denied"
        candidate.reason = str(data.get("reason") or "denied by the flow")
        return [Verdict(candidate.cid, lock.lid, 422, {
            "lid": lock.lid, "cid": candidate.cid, "released": False,
            "reason": candidate.reason, "detail": candidate.reason,
        })]

    def _supersede_pending(self, lock: Lock) -> list[Verdict]:
        return [self._supersede(c, lock) for c in lock.candidates.values()
                if c.status == "pending"]

    @staticmethod
    def _supersede(candidate: Candidate, lock: Lock) -> Verdict:
        candidate.status = "superseded"
        why = {
            "released": f"lock {lock.lid} was already released with another candidate",
            "expired": f"lock {lock.lid} expired: {lock.reason}",
            "closed": f"lock {lock.lid} is closed: {lock.reason}",
        }.get(lock.status, f"lock {lock.lid} is {lock.status}")
        candidate.reason = why
        return Verdict(candidate.cid, lock.lid, 409, {
            "lid": lock.lid, "cid": candidate.cid, "released": False, "detail": why,
        })

    # -- questions the HTTP layer asks ------------------------------------------------

    def admit(self, lid: str) -> Admission:
        """May a candidate be submitted to ``lid`` now? (Schema checks come after.)"""
        lock = self.locks.get(lid)
        if lock is None:
            return Admission(False, 404, f"no lock {lid!r} in this run")
        if lock.status == "released":
            return Admission(False, 409, f"lock {lid} was already released")
        if lock.status == "expired":
            return Admission(False, 409, f"lock {lid} expired: {lock.reason}")
        if lock.status == "closed":
            return Admission(False, 409, f"lock {lid} is closed: {lock.reason}")
        return Admission(True)

    def open_locks(self) -> list[Lock]:
        return [lock for lock in self.locks.values() if lock.status == "open"]

    def pending_candidates(self) -> list[Candidate]:
        """Candidates the flow has not answered yet: re-sent to a reconnecting worker."""
        return [c for lock in self.open_locks() for c in lock.candidates.values()
                if c.status == "pending"]

    def verdict_of(self, lid: str, cid: str) -> Verdict | None:
        """The verdict of a candidate already decided (None while pending or unknown)."""
        lock = self.locks.get(lid)
        candidate = lock.candidates.get(cid) if lock else None
        if lock is None or candidate is None or candidate.status == "pending":
            return None
        if candidate.status == "released":
            return Verdict(cid, lid, 200, {"lid": lid, "cid": cid, "released": True,
                                           "accepted": candidate.accepted})
        if candidate.status == "denied":
            return Verdict(cid, lid, 422, {"lid": lid, "cid": cid, "released": False,
                                           "reason": candidate.reason,
                                           "detail": candidate.reason})
        return Verdict(cid, lid, 409, {"lid": lid, "cid": cid, "released": False,
                                       "detail": candidate.reason})
