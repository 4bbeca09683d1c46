"""Named API tokens: created by an operator, shown once, stored as digests, revocable.

A studio gives each person or tool its own token (``viewer`` for a wall display, another
``operator`` for a script) instead of copying ``admin.token`` around, and can take one
back without touching the others. Lookups go by digest, so the secret itself is never
stored or compared; ``last_used_at`` is written at most once a minute per token, so a busy
console does not turn every read into a database write.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from backend import diskspace
from backend.hub.access import NAMED_KINDS, Kind, Principal
from backend.hub.tokens import digest, new_token
from backend.store import Store

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: ``admin.token`` answers to this name; no named token may take it.
ADMIN = "admin"
TOUCH_EVERY_S = 60.0


class TokenError(ValueError):
    """A token could not be created; the message says why and what to do."""


@dataclass(frozen=True)
class TokenView:
    name: str
    kind: str
    created_at: float
    last_used_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "created_at": self.created_at,
                "last_used_at": self.last_used_at}


class NamedTokens:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_digest: dict[str, tuple[str, Kind]] = {}
        self._touched: dict[str, float] = {}
        #: Set when the token is revoked: its open streams end (``streams.until``).
        self._revoked: dict[str, asyncio.Event] = {}

    def _is_named(self, principal: Principal | None) -> bool:
        """Whether ``principal`` is one of these tokens (not admin.token, not a node)."""
        return principal is not None and (principal.name, principal.kind) in \
            self._by_digest.values()

    def revoked_signal(self, principal: Principal | None) -> asyncio.Event | None:
        """The event a named token's open streams end on; ``None`` for other callers."""
        if principal is None or not self._is_named(principal):
            return None
        return self._revoked.setdefault(principal.name, asyncio.Event())

    async def load(self) -> None:
        rows = await self._store.query("SELECT name, kind, digest FROM api_tokens")
        self._by_digest = {r["digest"]: (r["name"], Kind(r["kind"])) for r in rows}

    async def create(self, name: str, kind: str) -> str:
        """A new token's secret (returned once, never stored)."""
        if not re.match(NAME_PATTERN, name):
            raise TokenError(f"name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        if name == ADMIN:
            raise TokenError("'admin' is the hub's own operator token (admin.token); "
                             "pick another name")
        if kind not in NAMED_KINDS:
            raise TokenError(f"kind {kind!r}: use one of {', '.join(NAMED_KINDS)}")
        if any(n == name for n, _ in self._by_digest.values()):
            raise TokenError(f"a token named {name!r} exists; revoke it first "
                             f"(DELETE /api/v1/tokens/{name}) or pick another name")
        secret = new_token("crt_")
        hashed = digest(secret)
        await self._store.execute(
            "INSERT INTO api_tokens (name, kind, digest, created_at) VALUES (?, ?, ?, ?)",
            (name, kind, hashed, time.time()))
        self._by_digest[hashed] = (name, Kind(kind))
        return secret

    async def revoke(self, name: str) -> bool:
        removed = await self._store.update("DELETE FROM api_tokens WHERE name = ?", (name,))
        self._by_digest = {d: v for d, v in self._by_digest.items() if v[0] != name}
        self._touched.pop(name, None)
        signal = self._revoked.pop(name, None)
        if signal is not None:
            signal.set()
        return removed > 0

    async def list(self) -> list[TokenView]:
        rows = await self._store.query(
            "SELECT name, kind, created_at, last_used_at FROM api_tokens ORDER BY name")
        return [TokenView(r["name"], r["kind"], r["created_at"], r["last_used_at"])
                for r in rows]

    def check(self, token: str) -> Principal | None:
        found = self._by_digest.get(digest(token))
        return Principal(found[1], found[0]) if found else None

    async def touch(self, principal: Principal) -> None:
        """Record a named token's use, at most once a minute per token (other callers,
        ``admin.token`` and nodes, are not recorded)."""
        name = principal.name
        if not self._is_named(principal):
            return
        now = time.time()
        if now - self._touched.get(name, 0.0) < TOUCH_EVERY_S:
            return
        self._touched[name] = now
        # A full disk: the call is served, its last use recorded at a later call.
        with diskspace.unless_full(log, f"token {name}'s last use") as skipped:
            await self._store.update("UPDATE api_tokens SET last_used_at = ? WHERE name = ?",
                                     (now, name))
        if skipped.full:
            self._touched.pop(name, None)
