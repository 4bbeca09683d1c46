"""What a flow gets as ``ctx``: progress, log, locks, nested runs and the hub.

It lives in the worker process. Every call becomes an event sent to the node, which
commits it before anyone sees it (the worker resends what was not acknowledged after a
reconnect, so nothing is lost or doubled). ``docs/flows.md`` is the user's guide::

    @flow("greet", "Ask for a name, then greet.", GreetInputs)
    async def greet(ctx: Context, inputs: GreetInputs) -> str:
        ctx.progress(0.5, "waiting for the operator")
        answer = await ctx.lock("Who is there?", schema=Name,
                                check=lambda n: None if n.name else "a name, please")
        ctx.log(f"got {answer.name}")
        child = await ctx.run(node="node-b", flow="hello", inputs={"name": answer.name})
        return f"{inputs.greeting}, {answer.name} ({child})"
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from backend.client import ClientError, HubClient
from backend.node.fold import RunState
from backend.node.locks import DEFAULT_NO_CANDIDATE_TIMEOUT_S, DEFAULT_RELEASE_TIMEOUT_S

M = TypeVar("M", bound=BaseModel)
Check = Callable[[Any], "str | Awaitable[str | None] | None"]

_MISSING: Any = object()


class AnyObject(BaseModel):
    """The schema of a lock that takes any JSON object."""

    model_config = ConfigDict(extra="allow")


class LockTimeout(Exception):
    """No acceptable candidate within ``no_candidate_timeout``; uncaught, the run errors."""


class ChildFailed(Exception):
    """A nested run ended in error, cancelled or interrupted; ``state`` and ``error`` say how."""

    def __init__(self, node: str, fid: str, state: str, error: Any) -> None:
        detail = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"child run {fid} on {node} ended {state}: {detail}")
        self.node, self.fid, self.state, self.error = node, fid, state, error


class Emitter(Protocol):
    """The worker's side of the event stream."""

    def emit(self, type: str, data: dict[str, Any]) -> None: ...

    def open_lock(self, lid: str) -> asyncio.Queue[Candidate]: ...

    def close_lock(self, lid: str) -> None: ...


@dataclass(frozen=True)
class Candidate:
    """A candidate delivered to the flow: already valid against the lock's JSON Schema."""

    cid: str
    lid: str
    raw: Any


class Lock:
    """One open lock; ``await ctx.lock(...)`` covers most uses, this is the manual form.

    Iterate :meth:`candidates`, then :meth:`release` one or :meth:`deny` it with a reason.
    """

    def __init__(
        self, emitter: Emitter, prompt: str, schema: type[BaseModel],
        no_candidate_timeout: float, release_timeout: float, initial: bool = False,
    ) -> None:
        self.lid = "lk_" + secrets.token_hex(6)
        self.prompt = prompt
        self.schema = schema
        self.no_candidate_timeout = no_candidate_timeout
        self.deadline = time.monotonic() + no_candidate_timeout
        self._emitter = emitter
        self._queue = emitter.open_lock(self.lid)
        self.done = False
        emitter.emit("lock", {
            "lid": self.lid, "prompt": prompt, "schema": schema.model_json_schema(),
            "opened_at": time.time(), "no_candidate_timeout": no_candidate_timeout,
            "release_timeout": release_timeout, "initial": initial,
        })

    async def candidates(self) -> AsyncIterator[Candidate]:
        """Candidates as they arrive; raises :class:`LockTimeout` at the deadline."""
        while not self.done:
            remaining = self.deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                yield await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                reason = (f"no acceptable candidate for lock {self.lid} within "
                          f"{self.no_candidate_timeout:g} s (no-candidate-timeout)")
                self._emitter.emit("expire", {"lid": self.lid, "reason": reason})
                self._finish()
                raise LockTimeout(reason) from None

    def validate(self, candidate: Candidate) -> Any:
        """The candidate as the lock's model; ValidationError if it does not fit."""
        return self.schema.model_validate(candidate.raw)

    def release(self, candidate: Candidate, value: Any = _MISSING) -> None:
        accepted = candidate.raw if value is _MISSING else value
        if isinstance(accepted, BaseModel):
            accepted = accepted.model_dump(mode="json")
        self._emitter.emit("release", {"lid": self.lid, "cid": candidate.cid,
                                       "value": accepted})
        self._finish()

    def deny(self, candidate: Candidate, reason: str) -> None:
        self._emitter.emit("deny", {"lid": self.lid, "cid": candidate.cid, "reason": reason})

    def _finish(self) -> None:
        self.done = True
        self._emitter.close_lock(self.lid)


class Context:
    """The flow's handle on its run: the only API a flow needs."""

    def __init__(
        self, emitter: Emitter, fid: str, node: str, hub: HubClient,
        release_timeout: float = DEFAULT_RELEASE_TIMEOUT_S,
        no_candidate_timeout: float = DEFAULT_NO_CANDIDATE_TIMEOUT_S,
        workdir: Any = None,
    ) -> None:
        self._emitter = emitter
        self.fid = fid
        self.node = node
        #: Client of the hub (audio tasks, other nodes), authenticated for this node.
        self.hub = hub
        self.workdir = workdir
        self._release_timeout = release_timeout
        self._no_candidate_timeout = no_candidate_timeout

    def progress(self, value: float, message: str | None = None) -> None:
        """Report progress, 0..1, with an optional message."""
        data: dict[str, Any] = {"value": max(0.0, min(1.0, float(value)))}
        if message is not None:
            data["message"] = message
        self._emitter.emit("progress", data)

    def log(self, message: str, level: str = "info") -> None:
        self._emitter.emit("log", {"level": level, "message": str(message)})

    def open_lock(
        self, prompt: str, schema: type[BaseModel] | None = None, *,
        no_candidate_timeout: float | None = None, release_timeout: float | None = None,
        initial: bool = False,
    ) -> Lock:
        """Open a lock and handle its candidates yourself (see :class:`Lock`)."""
        return Lock(
            self._emitter, prompt, schema or AnyObject,
            self._no_candidate_timeout if no_candidate_timeout is None else no_candidate_timeout,
            self._release_timeout if release_timeout is None else release_timeout, initial,
        )

    async def lock(
        self, prompt: str, schema: type[M] | None = None, *,
        no_candidate_timeout: float | None = None, release_timeout: float | None = None,
        check: Check | None = None, default: Any = _MISSING, initial: bool = False,
    ) -> Any:
        """Demand input from a human; return the first candidate the flow accepts.

        A candidate that fails ``schema`` (pydantic validators included) or for which
        ``check`` returns a reason is denied with that reason, and the lock keeps waiting.
        With no acceptable candidate before ``no_candidate_timeout`` it returns
        ``default`` if given, else raises :class:`LockTimeout` (the run errors with it).
        """
        lock = self.open_lock(prompt, schema, no_candidate_timeout=no_candidate_timeout,
                              release_timeout=release_timeout, initial=initial)
        try:
            async for candidate in lock.candidates():
                try:
                    value = lock.validate(candidate)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "candidate"
                    lock.deny(candidate, f"{where}: {first['msg']}")
                    continue
                if check is not None:
                    reason = check(value)
                    if inspect.isawaitable(reason):
                        reason = await reason
                    if reason:
                        lock.deny(candidate, str(reason))
                        continue
                lock.release(candidate, value)
                return value
        except LockTimeout:
            if default is not _MISSING:
                return default
            raise
        raise LockTimeout(f"lock {lock.lid} ended without a candidate")

    async def run(
        self, flow: str, inputs: dict[str, Any] | None = None, *, node: str | None = None,
    ) -> Any:
        """Run ``flow`` on ``node`` (default: this node) as a child; return its result.

        The child is started through the hub's proxy, its stream followed (resuming with
        ``Last-Event-ID`` after any cut), and every change of its state or open locks is
        recorded in this run as a ``child`` event, so the parent shows it. Raises
        :class:`ChildFailed` if the child does not end done. Cancelling the parent
        cancels the child.
        """
        target = node or self.node
        client = self.hub.node(target)
        fid = await client.start(flow, inputs, parent={"node": self.node, "fid": self.fid})
        base = {"node": target, "fid": fid, "flow": flow}
        self._emitter.emit("child", {**base, "state": "pending", "locks": []})
        state = RunState(fid)
        last: dict[str, Any] | None = None
        try:
            async for event in client.events(fid):
                state.apply(event)
                summary = state.summary()
                if summary != last:
                    self._emitter.emit("child", {**base, **summary})
                    last = summary
                if state.done:
                    break
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(asyncio.shield(client.cancel(fid)), 2)
            except (ClientError, TimeoutError, OSError):
                pass
            raise
        if state.final == "done":
            return state.result
        raise ChildFailed(target, fid, state.state, state.error)
