"""Routing what agents send beyond registration and health to the parts that handle it.

The agent channel knows hello, pong, config_applied and report. Audio tasks (and later
jobs and nodes) register handlers here for their own message types and for binary frames,
and listeners for component state changes, so :mod:`backend.hub.channel` stays a thin loop
that needs no change when a part is added.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from backend import diskspace
from backend.errors import ProtocolViolation
from backend.hub.component import Component
from backend.hub.health import Health
from backend.protocol import Message, closecodes

log = logging.getLogger(__name__)

MessageHandler = Callable[[Component, Message], Awaitable[None]]
BinaryHandler = Callable[[Component, bytes], Awaitable[None]]
StateListener = Callable[[Component, Health, str], Awaitable[None]]


class Dispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, MessageHandler] = {}
        self._binary: BinaryHandler | None = None
        self._listeners: list[StateListener] = []

    def on(self, message_type: str, handler: MessageHandler) -> None:
        self._handlers[message_type] = handler

    def on_binary(self, handler: BinaryHandler) -> None:
        self._binary = handler

    def on_state(self, listener: StateListener) -> None:
        """Called after every health change and after every registration (half-open)."""
        self._listeners.append(listener)

    async def message(self, component: Component, message: Message) -> None:
        message_type = str(getattr(message, "type", ""))
        handler = self._handlers.get(message_type)
        if handler is None:
            raise ProtocolViolation(
                closecodes.UNKNOWN_TYPE, f"no handler for message type {message_type!r}"
            )
        # A full disk is not the agent's fault: disconnecting it (as for a handler's bug)
        # would only make it reconnect into the same full disk, again and again. The
        # message is dropped unacknowledged instead; agents resend what the hub has not
        # acknowledged (a runner's reports and output), so it is applied once space returns.
        with diskspace.unless_full(log, f"a {message_type} from {component.id} (dropped, "
                                        "unacknowledged)"):
            await handler(component, message)

    async def binary(self, component: Component, frame: bytes) -> None:
        if self._binary is None:
            raise ProtocolViolation(closecodes.INVALID_MESSAGE, "unexpected binary frame")
        with diskspace.unless_full(log, f"a binary frame from {component.id} (dropped)"):
            await self._binary(component, frame)

    async def state_changed(self, component: Component, state: Health, reason: str) -> None:
        for listener in self._listeners:
            try:
                await listener(component, state, reason)
            except Exception:  # one part's bug must not break registration for all
                log.exception("state listener failed for %s", component.id)

