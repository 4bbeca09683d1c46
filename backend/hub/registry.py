"""The registry of components: who is registered, with which config, in which health state.

It owns the rules of registration (authenticate, merge the stored config over the static
one, replace an older connection of the same component so it appears once) and persists
every change before announcing it as an event. The WebSocket handler in
:mod:`backend.hub.channel` feeds it; the HTTP API reads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend import diskspace
from backend.errors import AuthError, RequestRefused
from backend.hub import tokens
from backend.hub.component import AgentLink, Component
from backend.hub.dispatch import Dispatcher
from backend.hub.events import EventLog
from backend.hub.health import Health, HealthSettings
from backend.hub.merge import deep_merge
from backend.protocol import ConfigPush, Hello, Message, closecodes
from backend.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enrollment:
    token: str
    kind: str
    expires_at: float


class Registry:
    def __init__(
        self,
        store: Store,
        events: EventLog,
        health: HealthSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._events = events
        self.health = health
        self._clock = clock
        self.components: dict[str, Component] = {}
        self.dispatch = Dispatcher()
        self._stale_timer: asyncio.Task[None] | None = None

    # -- start-up and shut-down -------------------------------------------------------

    async def load(self) -> None:
        """Bring back every stored component half-open until it registers again."""
        for row in await self._store.query("SELECT * FROM components"):
            self.components[row["id"]] = Component(
                id=row["id"],
                kind=row["kind"],
                state=Health.HALF_OPEN,
                agent_id=row["agent_id"],
                static_config=json.loads(row["static_config"]),
                config=json.loads(row["config"]),
                last_seen=row["last_seen"],
                rtt_ms=row["rtt_ms"],
                report=json.loads(row["report"]) if row["report"] else None,
                registered_at=row["registered_at"],
            )
        if self.components:
            await self._store.execute("UPDATE components SET state = ?", (Health.HALF_OPEN,))
            self._stale_timer = asyncio.create_task(self._expire_stale())

    async def _expire_stale(self) -> None:
        await asyncio.sleep(self.health.hang_detection_s)
        for component in list(self.components.values()):
            if component.link is None and component.state is not Health.DOWN:
                await self.set_state(
                    component, Health.DOWN, "did not register again after the hub restarted"
                )

    @property
    def events(self) -> EventLog:
        """The hub's event log, for what happens on an agent's channel."""
        return self._events

    async def broadcast(self, message: Message) -> list[str]:
        """Send ``message`` to every connected agent; the ids of those it reached."""
        reached = []
        for component in list(self.components.values()):
            link = component.link
            if link is None:
                continue
            try:
                await link.send(message)
            except Exception as exc:  # one agent leaving mid-send must not stop the rest
                log.info("could not tell %s: %s", component.id, exc)
                continue
            reached.append(component.id)
        return sorted(reached)

    async def close_all(self, reason: str) -> None:
        if self._stale_timer is not None:
            self._stale_timer.cancel()
        for component in self.components.values():
            if component.link is not None:
                await component.link.close(closecodes.GOING_AWAY, reason)

    # -- enrollment and authentication ------------------------------------------------

    async def create_enrollment(self, kind: str, ttl_s: float) -> Enrollment:
        token = tokens.new_token(tokens.ENROLLMENT_PREFIX)
        now = self._clock()
        await self._store.execute(
            "INSERT INTO enrollments (token_digest, kind, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (tokens.digest(token), kind, now, now + ttl_s),
        )
        await self._events.append("enrollment.created", kind, {"kind": kind,
                                                                "expires_at": now + ttl_s})
        return Enrollment(token, kind, now + ttl_s)

    async def authenticate(self, hello: Hello) -> tuple[str, str | None]:
        """Return the agent id and, on enrollment only, its new secret; else AuthError."""
        if hello.enroll_token:
            return await self._enroll(hello, hello.enroll_token)
        if hello.agent_id and hello.secret:
            row = await self._store.query_one(
                "SELECT * FROM agents WHERE agent_id = ?", (hello.agent_id,)
            )
            if row is None:
                tokens.matches(hello.secret, tokens.digest(""))  # same work either way
                raise AuthError(closecodes.AUTH_FAILED, "unknown agent id")
            if not tokens.matches(hello.secret, row["secret_digest"]):
                raise AuthError(closecodes.AUTH_FAILED, "wrong secret")
            if row["revoked_at"] is not None:
                raise AuthError(closecodes.FORBIDDEN, "agent credentials revoked")
            if row["name"] != hello.name or row["kind"] != hello.kind:
                raise AuthError(
                    closecodes.FORBIDDEN,
                    f"credentials belong to {row['kind']} {row['name']!r}, "
                    f"not {hello.kind} {hello.name!r}",
                )
            return hello.agent_id, None
        raise AuthError(
            closecodes.AUTH_FAILED, "hello carries neither an enrollment token nor credentials"
        )

    async def check_agent(self, agent_id: str, secret: str,
                          kinds: frozenset[str]) -> tuple[str, str]:
        """The kind and name of the agent whose channel id and secret these are, for an HTTP
        route an agent calls without a bearer token (a media fetch): unknown id or wrong
        secret 401, revoked or a kind not in ``kinds`` 403, each saying so."""
        row = await self._store.query_one("SELECT * FROM agents WHERE agent_id = ?",
                                          (agent_id,))
        stored = row["secret_digest"] if row is not None else tokens.digest("")
        if not tokens.matches(secret, stored) or row is None:  # same work either way
            raise RequestRefused(401, "unknown agent id or wrong secret: send the id and "
                                 "secret of the agent's credentials.json in X-Agent-Id and "
                                 "X-Agent-Secret")
        if row["revoked_at"] is not None:
            raise RequestRefused(403, f"the credentials of {row['kind']} {row['name']!r} "
                                 "were revoked: enroll the agent again")
        if row["kind"] not in kinds:
            raise RequestRefused(403, f"a {row['kind']} agent may not do this; only "
                                 f"{' and '.join(sorted(kinds))} agents may")
        return str(row["kind"]), str(row["name"])

    async def _enroll(self, hello: Hello, token: str) -> tuple[str, str]:
        token_digest = tokens.digest(token)
        row = await self._store.query_one(
            "SELECT * FROM enrollments WHERE token_digest = ?", (token_digest,)
        )
        record = None
        if row is not None and tokens.matches(token, row["token_digest"]):
            record = tokens.EnrollmentRecord(
                row["token_digest"], row["kind"], row["expires_at"], row["used_at"]
            )
        now = self._clock()
        tokens.check_enrollment(record, hello.kind, now)
        agent_id = tokens.new_agent_id()
        secret = tokens.new_token(tokens.SECRET_PREFIX)
        claimed = await self._store.update(
            "UPDATE enrollments SET used_at = ?, used_by = ? "
            "WHERE token_digest = ? AND used_at IS NULL",
            (now, agent_id, token_digest),
        )
        if not claimed:  # another connection used it between the check and now
            raise AuthError(closecodes.AUTH_FAILED, "enrollment token already used")
        # A new enrollment under an existing name supersedes the old credentials.
        await self._store.execute(
            "UPDATE agents SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (now, hello.name),
        )
        await self._store.execute(
            "INSERT INTO agents (agent_id, kind, name, secret_digest, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent_id, hello.kind, hello.name, tokens.digest(secret), now),
        )
        log.info("enrolled %s %s as %s", hello.kind, hello.name, agent_id)
        await self._events.append("enrollment.used", hello.name,
                                  {"kind": hello.kind, "agent_id": agent_id})
        return agent_id, secret

    # -- registration and health ------------------------------------------------------

    async def register(self, hello: Hello, agent_id: str, link: AgentLink,
                       welcome: Callable[[Component], Awaitable[None]] | None = None,
                       ) -> Component:
        """Merge configs, mark half-open, and replace an older connection of the same id.

        ``welcome`` sends the agent its welcome (with the merged config). It is awaited
        before the component gets its new link and before anyone hears of the
        registration: a listener (the task service pushing every task's spec to an engine
        that comes back) would otherwise send on the link first, and an agent whose first
        message is not a welcome gives up on the connection and tries again, for ever.
        """
        stored = await self.stored_config(hello.name)
        merged = deep_merge(hello.config, stored)
        now = self._clock()
        component = self.components.get(hello.name)
        old_link = component.link if component else None
        if component is None:
            component = Component(id=hello.name, kind=hello.kind, state=Health.HALF_OPEN)
            self.components[hello.name] = component
        component.kind = hello.kind
        component.agent_id = agent_id
        component.static_config = dict(hello.config)
        component.config = merged
        component.registered_at = now
        component.last_seen = now
        component.link = None  # nothing is sent to the agent before its welcome
        if old_link is not None:
            await old_link.close(closecodes.REPLACED, "replaced by a newer connection")
        if welcome is not None:
            await welcome(component)
        component.link = link
        old_state, component.state = component.state, Health.HALF_OPEN
        await self._persist(component)
        await self._events.append(
            "component.registered",
            component.id,
            {"kind": component.kind, "state": component.state.value,
             "old": old_state.value, "config": merged},
        )
        await self.dispatch.state_changed(component, component.state, "registered")
        return component

    async def set_state(self, component: Component, new: Health, reason: str) -> None:
        if component.state is new:
            return
        old, component.state = component.state, new
        log.info("%s %s: %s -> %s (%s)", component.kind, component.id, old, new, reason)
        # On a full disk the change still counts (a play on a driver that died must still
        # fail): only its record is lost, and a restart starts half-open anyway.
        with diskspace.unless_full(log, f"{component.kind} {component.id} is {new.value}"):
            await self._persist(component)
            await self._events.append(
                "component.state", component.id,
                {"kind": component.kind, "old": old.value, "new": new.value, "reason": reason},
            )
        await self.dispatch.state_changed(component, new, reason)

    def seen(self, component: Component, rtt_s: float) -> None:
        """A health check was answered; kept in memory (persisted with the next change)."""
        component.last_seen = self._clock()
        component.rtt_ms = rtt_s * 1000.0

    async def disconnected(self, component: Component, link: AgentLink, reason: str) -> None:
        if component.link is not link:
            return  # an older connection that a newer one already replaced
        component.link = None
        if component.state is Health.DOWN:
            await self._persist(component)
        else:
            await self.set_state(component, Health.DOWN, reason)

    async def set_report(self, component: Component, components: list[dict[str, Any]]) -> None:
        component.report = {"at": self._clock(), "components": components}
        await self._persist(component)
        await self._events.append("component.report", component.id, component.report)

    # -- configs ----------------------------------------------------------------------

    async def stored_config(self, component_id: str) -> dict[str, Any]:
        row = await self._store.query_one(
            "SELECT config FROM configs WHERE id = ?", (component_id,)
        )
        return json.loads(row["config"]) if row else {}

    async def put_config(self, component_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Store a config; a known component gets the new merge, pushed live if connected."""
        await self._store.execute(
            "INSERT INTO configs (id, config, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET config = excluded.config, "
            "updated_at = excluded.updated_at",
            (component_id, json.dumps(config), self._clock()),
        )
        component = self.components.get(component_id)
        if component is None:
            await self._events.append("config.stored", component_id, {"config": config})
            return config
        component.config = deep_merge(component.static_config, config)
        await self._persist(component)
        await self._events.append(
            "component.config", component_id,
            {"config": component.config, "pushed": component.link is not None},
        )
        if component.link is not None:
            await component.link.send(ConfigPush(config=component.config))
        return component.config

    async def _persist(self, c: Component) -> None:
        await self._store.execute(
            "INSERT INTO components (id, kind, agent_id, state, static_config, config, "
            "last_seen, rtt_ms, report, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, agent_id=excluded.agent_id, "
            "state=excluded.state, static_config=excluded.static_config, "
            "config=excluded.config, last_seen=excluded.last_seen, rtt_ms=excluded.rtt_ms, "
            "report=excluded.report, registered_at=excluded.registered_at",
            (
                c.id, c.kind, c.agent_id, c.state.value, json.dumps(c.static_config),
                json.dumps(c.config), c.last_seen, c.rtt_ms,
                json.dumps(c.report) if c.report is not None else None, c.registered_at,
            ),
        )
