"""Messages of the agent channel and their codec, free of I/O.

Every frame is one JSON text object with a ``type``. The codec turns raw frames into typed
messages or raises :class:`~backend.errors.ProtocolViolation` with the close code and a
reason an operator can act on, so the hub's connection handler and the agent's session stay
thin loops around it. Binary frames are reserved for audio blocks (a later issue).

Who sends what (``docs/protocol.md`` has the full table):

- agent -> hub: ``hello`` (first frame), ``pong``, ``config_applied``, ``report`` (hubs only)
- hub -> agent: ``welcome`` (answer to hello), ``ping``, ``config``
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.errors import ProtocolViolation
from backend.protocol import closecodes

#: Largest frame either side accepts. Control messages are tiny; a config is a few KiB.
MAX_FRAME_BYTES = 1024 * 1024

#: Deepest nesting of arrays and objects a message may have. Real ones (a task spec, a
#: config) stay under ten; a frame of ``[[[[...`` made the hub's JSON decoder, or the config
#: merge's deep copy, raise RecursionError and the connection died without a reason.
MAX_DEPTH = 64

#: A component id: what ``--name`` gives. Safe in URLs, file names and log lines.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

AgentKind = Literal["engine", "driver", "runner", "node", "hub"]
AGENT_KINDS: tuple[str, ...] = ("engine", "driver", "runner", "node", "hub")


class Message(BaseModel):
    """Base of every message; ``type`` is its discriminator."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Hello(Message):
    """First frame from an agent: who it is, its static config and how it proves it."""

    type: Literal["hello"] = "hello"
    kind: AgentKind
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    config: dict[str, Any] = Field(default_factory=dict)
    version: str = ""
    #: First start: the one-time enrollment token.
    enroll_token: str | None = None
    #: Later starts: the id and secret the hub handed out at enrollment.
    agent_id: str | None = None
    secret: str | None = None
    #: Certificates this agent refused since it last got through (fingerprint, url, at):
    #: possible interception, which the hub turns into ``agent.pin_mismatch`` events.
    pin_mismatches: list[dict[str, Any]] = Field(default_factory=list, max_length=20)


class Pong(Message):
    """Answer to a health check, echoing its sequence number."""

    type: Literal["pong"] = "pong"
    seq: int


class ConfigApplied(Message):
    """The agent has applied the config it was sent."""

    type: Literal["config_applied"] = "config_applied"


class Report(Message):
    """A hub's summary of its own components, sent upward to a cloud-role hub."""

    type: Literal["report"] = "report"
    components: list[dict[str, Any]]


class Welcome(Message):
    """The hub accepted a hello: identity, merged config and health-check timing."""

    type: Literal["welcome"] = "welcome"
    agent_id: str
    #: Only on enrollment; the agent stores it and never receives it again.
    secret: str | None = None
    config: dict[str, Any]
    health: dict[str, float]
    #: The certificate (PEM) the hub will switch to at its next start, once announced.
    tls_next: str | None = None


class Ping(Message):
    """Health check: "are you alive?"."""

    type: Literal["ping"] = "ping"
    seq: int


class ConfigPush(Message):
    """The component's merged config changed on the hub; apply it now."""

    type: Literal["config"] = "config"
    config: dict[str, Any]


class TlsNext(Message):
    """The hub's next certificate (PEM): trust it too, before the hub switches to it."""

    type: Literal["tls_next"] = "tls_next"
    certificate: Annotated[str, Field(max_length=16384)]


#: Message classes by ``type``, per direction. Modules that extend the protocol (audio
#: tasks, nodes) add their classes with :func:`register`; the codec looks them up here.
AGENT_MESSAGES: dict[str, type[Message]] = {}
HUB_MESSAGES: dict[str, type[Message]] = {}


def register(direction: Literal["agent", "hub"], *classes: type[Message]) -> None:
    """Add message classes to the protocol (``agent``: sent by agents; ``hub``: by the hub)."""
    table = AGENT_MESSAGES if direction == "agent" else HUB_MESSAGES
    for cls in classes:
        name = cls.model_fields["type"].default
        if name in table and table[name] is not cls:
            raise ValueError(f"message type {name!r} registered twice")
        table[name] = cls


register("agent", Hello, Pong, ConfigApplied, Report)
register("hub", Welcome, Ping, ConfigPush, TlsNext)


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's json reads them, JSON has none, and a
    value kept from one (a report, a config) made the hub's event stream invalid JSON."""
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A number too large for a float (``1e999``) would be read as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value


def _too_deep() -> ProtocolViolation:
    return ProtocolViolation(closecodes.INVALID_MESSAGE,
                             f"message nested deeper than {MAX_DEPTH} levels")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed message (iterative: a deep one must
    not blow the stack here, as it did in the config merge's copy)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _decode(frame: str | bytes, table: dict[str, type[Message]]) -> Message:
    if isinstance(frame, bytes):
        raise ProtocolViolation(
            closecodes.INVALID_MESSAGE, "binary frame where a JSON text message was expected"
        )
    if len(frame) > MAX_FRAME_BYTES // 4 and len(frame.encode()) > MAX_FRAME_BYTES:
        raise ProtocolViolation(
            closecodes.MESSAGE_TOO_BIG, f"frame over the {MAX_FRAME_BYTES} byte limit"
        )
    try:
        raw = json.loads(frame, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # json's own limit (about 1,000 levels) gave out first
        raise _too_deep() from None
    except ValueError as exc:
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, f"malformed JSON: {exc}") from None
    if _depth(raw) > MAX_DEPTH:
        raise _too_deep()
    if not isinstance(raw, dict):
        raise ProtocolViolation(
            closecodes.INVALID_MESSAGE, "a message must be a JSON object with a 'type'"
        )
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "message has no string 'type'")
    cls = table.get(kind)
    if cls is None:
        raise ProtocolViolation(closecodes.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolViolation(
            closecodes.INVALID_MESSAGE, f"invalid {kind}: {where}: {first['msg']}"[:120]
        ) from None


def decode_agent_message(frame: str | bytes) -> Message:
    """Parse a frame an agent sent to the hub."""
    return _decode(frame, AGENT_MESSAGES)


def decode_hub_message(frame: str | bytes) -> Message:
    """Parse a frame the hub sent to an agent."""
    return _decode(frame, HUB_MESSAGES)


def encode(message: Message) -> str:
    """Serialise a message as one compact JSON text frame."""
    return message.model_dump_json(exclude_none=True)


