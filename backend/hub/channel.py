"""The hub's end of the WebSocket agent channel: one coroutine per connected agent.

A thin asyncio loop around the sans-I/O parts: the codec (:mod:`backend.protocol`), the
health state machine (:mod:`backend.hub.health`) and the registry's rules. It reads the
hello, authenticates, registers, then runs two things side by side until the socket closes:
the receive loop (answers, config acks, reports) and the health loop (checks on time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from backend.errors import AuthError, ProtocolViolation
from backend.hub.component import Component
from backend.hub.health import Action as HealthAction
from backend.hub.health import Answered, HealthCheck, SendPing, StateChanged
from backend.hub.registry import Registry
from backend.hub.throttle import FailureThrottle, report
from backend.protocol import (
    MAX_FRAME_BYTES,
    ConfigApplied,
    Hello,
    Ping,
    Pong,
    Report,
    Welcome,
    closecodes,
    decode_agent_message,
    encode,
)
from backend.protocol.messages import Message

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason

    def describe(self) -> str:
        if self.code in (1005, 1006):
            return "connection lost without a close frame (the agent died or the network broke)"
        if self.code == closecodes.NORMAL:
            return f"agent closed the connection ({self.reason or 'no reason given'})"
        return f"connection closed with code {self.code} ({self.reason or 'no reason given'})"


class StarletteLink:
    """:class:`~backend.hub.component.AgentLink` over a Starlette WebSocket."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._send_lock = asyncio.Lock()
        self.closed = False
        #: The agent's address as the hub sees it (None if unknown).
        self.peer_host: str | None = ws.client.host if ws.client else None

    async def send(self, message: Message) -> None:
        await self._send(self._ws.send_text, encode(message))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self._ws.send_bytes, data)

    async def _send(self, send: Callable[[Any], Awaitable[None]], data: Any) -> None:
        """Send, or drop the link; the receive loop sees the close and reports it."""
        if self.closed:
            return
        async with self._send_lock:
            try:
                await send(data)
            except (WebSocketDisconnect, RuntimeError) as exc:
                # The agent went away between our check and the send (an agent stopping
                # while the hub pushes a health check): expected, so no traceback.
                log.info("an agent's link closed while sending (%s); dropping it",
                         type(exc).__name__)
                self.closed = True
            except Exception:
                log.warning("send to an agent failed; dropping the link", exc_info=True)
                self.closed = True

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._ws.application_state is WebSocketState.CONNECTED:
            try:
                await self._ws.close(code, reason[:120])
            except Exception:
                log.debug("close of an already broken socket", exc_info=True)

    async def receive(self) -> str | bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise _Closed(int(message.get("code") or 1005), str(message.get("reason") or ""))
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")


async def serve_agent(
    ws: WebSocket, registry: Registry, clock: Callable[[], float] = time.monotonic,
    tls_next: Callable[[], str | None] = lambda: None,
    throttle: FailureThrottle | None = None,
) -> None:
    """Serve one agent connection from accept to close. ``tls_next`` is the certificate
    the hub has announced for its next start (told in the welcome), if any; ``throttle``
    counts failed hellos per address and credential like failed tokens."""
    await ws.accept()
    link = StarletteLink(ws)
    address = ws.client.host if ws.client else "?"
    peer = f"{address}:{ws.client.port}" if ws.client else "?"
    try:
        frame = await asyncio.wait_for(link.receive(), HELLO_TIMEOUT_S)
        hello = decode_agent_message(frame)
        if not isinstance(hello, Hello):
            raise ProtocolViolation(closecodes.INVALID_MESSAGE, "the first message must be hello")
        try:  # valid credentials first: they pass even while this address is throttled
            agent_id, secret = await registry.authenticate(hello)
        except AuthError as exc:
            if throttle is None:
                raise
            counted = throttle.failure(FailureThrottle.keys(
                address, hello.enroll_token or hello.secret or ""))
            if isinstance(counted, int):
                await link.close(closecodes.TRY_AGAIN_LATER,
                                 f"too many failed hellos; retry in {counted} s")
                return
            await report(counted, registry.events.append, address, "/api/v1/agents",
                         exc.reason, agent=f"{hello.kind} {hello.name}")
            raise
    except TimeoutError:
        await link.close(closecodes.HELLO_TIMEOUT, f"no hello within {HELLO_TIMEOUT_S:g} s")
        return
    except (ProtocolViolation, AuthError) as exc:
        log.warning("refused agent from %s: %s", peer, exc.reason)
        await link.close(exc.code, exc.reason)
        return
    except _Closed:
        return

    settings = registry.health

    async def welcome(component: Component) -> None:
        await link.send(
            Welcome(
                agent_id=agent_id,
                secret=secret,
                config=component.config,
                health={"interval_s": settings.interval_s, "timeout_s": settings.timeout_s,
                        "misses": settings.misses},
                tls_next=tls_next(),
            )
        )

    # The welcome goes out inside the registration, before any listener of it can send.
    component = await registry.register(hello, agent_id, link, welcome=welcome)
    for seen in hello.pin_mismatches:  # the agent refused a certificate since last time
        await registry.events.append("agent.pin_mismatch", component.id, {
            "presented": str(seen.get("presented", ""))[:80],
            "expected": [str(e)[:80] for e in seen.get("expected", [])][:4],
            "url": str(seen.get("url", ""))[:200], "at": seen.get("at")})
    check = HealthCheck(settings, clock())

    async def act(actions: list[HealthAction]) -> None:
        for action in actions:
            if isinstance(action, SendPing):
                await link.send(Ping(seq=action.seq))
            elif isinstance(action, Answered):
                registry.seen(component, action.rtt_s)
            elif isinstance(action, StateChanged):
                await registry.set_state(component, action.new, action.reason)

    async def health_loop() -> None:
        while True:
            await act(check.poll(clock()))
            deadline = check.next_deadline()
            if deadline is None:
                return
            await asyncio.sleep(max(0.0, deadline - clock()))

    health_task = asyncio.create_task(health_loop(), name=f"health:{component.id}")
    reason = "connection closed"
    try:
        while True:
            frame = await link.receive()
            if isinstance(frame, bytes):
                if len(frame) > MAX_FRAME_BYTES:
                    raise ProtocolViolation(
                        closecodes.MESSAGE_TOO_BIG, f"frame over the {MAX_FRAME_BYTES} byte limit"
                    )
                await registry.dispatch.binary(component, frame)
                continue
            message = decode_agent_message(frame)
            if isinstance(message, Pong):
                await act(check.answered(message.seq, clock()))
            elif isinstance(message, ConfigApplied):
                log.info("%s applied its config", component.id)
            elif isinstance(message, Report):
                await registry.set_report(component, message.components)
            elif isinstance(message, Hello):
                raise ProtocolViolation(closecodes.INVALID_MESSAGE, "hello sent twice")
            else:
                await registry.dispatch.message(component, message)
    except _Closed as closed:
        reason = closed.describe()
    except ProtocolViolation as exc:
        log.warning("disconnecting %s: %s", component.id, exc.reason)
        reason = f"disconnected: {exc.reason}"
        await link.close(exc.code, exc.reason)
    except Exception as exc:  # a handler's bug: this connection only, with a reason
        log.exception("handling a message from %s failed; disconnecting it", component.id)
        reason = f"disconnected: the hub failed handling its message ({type(exc).__name__})"
        await link.close(closecodes.INTERNAL_ERROR, reason)
    finally:
        health_task.cancel()
        check.closed(reason)
        if not link.closed:
            await link.close(closecodes.GOING_AWAY, "hub shutting down")
        await asyncio.shield(registry.disconnected(component, link, reason))
