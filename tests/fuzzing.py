"""Fuzzing the agent channel over real sockets: strategies, a state machine, the oracles.

Shared by the short CI runs (``tests/fuzz``) and the long run (``benchmarks/fuzz_channel.py``).
schemathesis reads OpenAPI and has no WebSocket support, so the channel gets its own:

- :func:`from_schema` turns each message model's ``model_json_schema()`` into a Hypothesis
  strategy (the subset of JSON Schema pydantic emits; ``hypothesis-jsonschema`` is not a
  dependency), so every message type of the protocol is generated, valid, and a change to a
  model changes what is fuzzed;
- :func:`mutated` breaks a valid message the ways a broken or hostile agent would (a field
  dropped, a wrong type, an unknown field or type, NaN, deep nesting, cut JSON) and says
  which close codes the hub may answer with;
- :class:`ChannelMachine` is a rule-based state machine of connections: connect with a
  good, bad or no credential (slowly, too), send valid, mutated, binary, oversized and
  replayed frames, hello twice, disconnect abruptly; after every step the hub must answer
  its health check;
- :class:`Watch` samples the healthy agents' last answered checks from the hub throughout,
  and :func:`tracebacks` reads the hub's log: a handler's exception is a failure even when
  the hub survives it.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from processes import AgentProcess, HubProcess, wait_until
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from backend.protocol import MAX_FRAME_BYTES, closecodes, frames
from backend.protocol.messages import AGENT_MESSAGES

JSON = dict[str, Any]

#: Close codes a connection may end with, as ``docs/protocol.md`` lists them. Anything else
#: (1011 internal error, 1006 a drop without a close frame) is a failure.
DOCUMENTED = frozenset({closecodes.NORMAL, closecodes.GOING_AWAY, closecodes.MESSAGE_TOO_BIG,
                        closecodes.TRY_AGAIN_LATER, closecodes.INVALID_MESSAGE,
                        closecodes.AUTH_FAILED, closecodes.FORBIDDEN, closecodes.UNKNOWN_TYPE,
                        closecodes.HELLO_TIMEOUT, closecodes.REPLACED})
REFUSED = frozenset({closecodes.AUTH_FAILED, closecodes.FORBIDDEN,
                     closecodes.TRY_AGAIN_LATER})
#: The fuzzer's own agents are named ``fz-N``: never a healthy agent's name, so the fuzzer
#: cannot replace one (which would be a down the test caused, not the hub).
FUZZ_NAMES = [f"fz-{i}" for i in range(6)]


# -- JSON Schema -> strategy ------------------------------------------------------------

#: Any JSON value, small: for ``Any`` fields and free-form objects.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def from_schema(schema: JSON, defs: JSON | None = None) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (what pydantic's ``model_json_schema`` emits)."""
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema.get("anyOf", schema.get("oneOf"))])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, defs) for k in kind])
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 10**9))
        return st.text(min_size=schema.get("minLength", 0),
                       max_size=min(schema.get("maxLength", 24), 24))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if kind == "integer":
            return st.integers(None if low is None else math.ceil(low),
                               None if high is None else math.floor(high))
        return st.floats(low, high, allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema,
                         exclude_max="exclusiveMaximum" in schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema["items"], defs) if "items" in schema else json_values
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object" or "properties" in schema:
        return _objects(schema, defs)
    return json_values


def _objects(schema: JSON, defs: JSON) -> st.SearchStrategy[JSON]:
    properties: JSON = schema.get("properties", {})
    required = set(schema.get("required", []))
    extra = schema.get("additionalProperties", True)
    if not properties:
        values = from_schema(extra, defs) if isinstance(extra, dict) else json_values
        return st.dictionaries(st.text(max_size=8), values, max_size=3)
    optional = sorted(set(properties) - required)
    return st.fixed_dictionaries(
        {name: from_schema(properties[name], defs) for name in sorted(required)},
        optional={name: from_schema(properties[name], defs) for name in optional},
    )


#: Every message an agent may send but ``hello``, valid against its model.
VALID_TYPES = sorted(t for t in AGENT_MESSAGES if t != "hello")


def valid_message(types: list[str] | None = None) -> st.SearchStrategy[JSON]:
    """A message of one of ``types`` (every agent message but hello by default)."""
    return st.one_of([from_schema(AGENT_MESSAGES[t].model_json_schema()).map(
        lambda body, t=t: {"type": t, **{k: v for k, v in body.items() if k != "type"}})
        for t in (types or VALID_TYPES)])


def _json_types(schema: JSON) -> set[str]:
    """The JSON types a field accepts ("any" when it says nothing)."""
    if "anyOf" in schema:
        return set().union(*(_json_types(s) for s in schema["anyOf"]))
    if "const" in schema or "enum" in schema:
        return {"string"}
    kind = schema.get("type")
    if kind is None:
        return {"any"}
    kinds = set(kind if isinstance(kind, list) else [kind])
    if "integer" in kinds:
        kinds.add("number")
    return kinds


#: A value of each JSON type that no lax conversion turns into another type.
_WRONG = {"object": {"wrong": [1]}, "array": [["wrong"]], "string": "wrong",
          "null": None}


class Mutant:
    """A frame and the close codes the hub may answer it with (``None``: it stays open).

    Not a dataclass: Hypothesis prints a failing example field by field, and a frame can
    be 200 kB; this ``repr`` cuts it."""

    def __init__(self, what: str, frame: str, expect: frozenset[int | None]) -> None:
        self.what, self.frame, self.expect = what, frame, expect

    def __repr__(self) -> str:
        return f"Mutant({self.what!r}, {self.frame[:200]!r}..., expect={set(self.expect)})"


@st.composite
def mutated(draw: st.DrawFn, types: list[str] | None = None) -> Mutant:
    """A valid message broken one way, with what the hub must do about it."""
    message = draw(valid_message(types))
    kind = message["type"]
    schema = AGENT_MESSAGES[kind].model_json_schema()
    props: JSON = schema.get("properties", {})
    bad = frozenset({closecodes.INVALID_MESSAGE})
    how = draw(st.sampled_from(["drop", "wrong_type", "extra", "unknown_type", "type_not_str",
                                "not_object", "cut", "nan", "deep", "huge_number"]))
    if how == "drop" and set(schema.get("required", [])) - {"type"}:
        name = draw(st.sampled_from(sorted(set(schema["required"]) - {"type"})))
        message.pop(name)
        return Mutant(f"{kind} without {name}", json.dumps(message), bad)
    if how == "wrong_type":
        fields = [n for n in props if n != "type" and "any" not in _json_types(props[n])]
        if fields:
            name = draw(st.sampled_from(sorted(fields)))
            choices = sorted(set(_WRONG) - _json_types(props[name]))
            if choices:
                message[name] = _WRONG[draw(st.sampled_from(choices))]
                return Mutant(f"{kind} with a wrong {name}", json.dumps(message), bad)
    if how == "unknown_type":
        message["type"] = draw(st.text(min_size=1, max_size=20).filter(
            lambda t: t not in AGENT_MESSAGES))
        return Mutant("an unknown type", json.dumps(message),
                      frozenset({closecodes.UNKNOWN_TYPE}))
    if how == "type_not_str":
        message["type"] = draw(st.sampled_from([1, None, ["pong"], {"t": 1}]))
        return Mutant("a type that is not a string", json.dumps(message), bad)
    if how == "not_object":
        return Mutant("JSON that is not an object",
                      json.dumps(draw(st.sampled_from([[message], kind, 7, None]))), bad)
    if how == "cut":
        text = json.dumps(message)
        return Mutant("cut JSON", text[:draw(st.integers(0, len(text) - 1))], bad)
    if how in ("nan", "deep", "huge_number"):
        if how == "deep":
            depth = draw(st.sampled_from([70, 1_000, 100_000]))
            raw, what = "[" * depth + "]" * depth, f"nested {depth} deep"
        else:
            raw = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"])) if how == "nan" \
                else "1e999"
            what = raw
        return Mutant(f"{kind} with {what}", _inject(draw, message, props, raw), bad)
    message[draw(st.text(min_size=1, max_size=8).filter(lambda n: n not in props))] = 1
    return Mutant(f"{kind} with an unknown field", json.dumps(message), bad)


_SLOT = "\x00fuzz\x00"


def _inject(draw: st.DrawFn, message: JSON, props: JSON, raw: str) -> str:
    """``message`` as JSON with ``raw`` (text no JSON encoder writes) in the place of a
    field that could hold it, a free-form one if there is one: not as an extra field,
    whose refusal would hide whether the value itself is refused."""
    fits = {name: _json_types(schema) & {"any", "object", "array", "number"}
            for name, schema in props.items() if name != "type"}
    fits = {name: kinds for name, kinds in fits.items() if kinds}
    if not fits:
        return json.dumps(message)[:-1] + f', "n": {raw}}}'
    name = draw(st.sampled_from(sorted(fits)))
    kinds = fits[name]
    message[name] = _SLOT
    slot = ("{\"x\": %s}" if "object" in kinds else "[%s]" if "array" in kinds else "%s") % raw
    return json.dumps(message).replace(json.dumps(_SLOT), slot)


binary_frames: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda header, payload: frames.pack(header, payload),
              st.fixed_dictionaries({"k": st.sampled_from(["audio", "insert", "insert_result",
                                                           "file", "teleport"])},
                                    optional={"task": st.text(max_size=8) | st.integers(),
                                              "offset": json_values, "seq": json_values}),
              st.binary(max_size=64)),
)


# -- the hub's side: its log, its memory, its health checks -----------------------------


def tracebacks(log_path: Path, since: int = 0) -> list[str]:
    """Error lines with an exception in the hub's log (after byte ``since``)."""
    found = []
    with log_path.open("rb") as log:
        log.seek(since)
        for line in log.read().decode(errors="replace").splitlines():
            if '"exc"' in line or "Traceback" in line:
                found.append(line[:2000])
    return found


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Watch:
    """Samples the healthy agents from the hub's component list every ``period_s``:
    their state and how long since each last answered a health check. ``late_s`` is the
    largest gap beyond the check interval: 0 when every check was answered on time."""

    def __init__(self, url: str, token: str, names: list[str], interval_s: float = 1.0,
                 period_s: float = 0.2) -> None:
        self.names = names
        self.interval_s = interval_s
        self.period_s = period_s
        self.late_s = {name: 0.0 for name in names}
        self.states: dict[str, set[str]] = {name: set() for name in names}
        self.samples = 0
        self.errors: list[str] = []
        self._client = httpx.Client(base_url=url, timeout=10,
                                    headers={"Authorization": f"Bearer {token}"})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watch")

    def __enter__(self) -> Watch:
        self._sample()  # one before and one after, however short the watch
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sample()
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def _sample(self) -> None:
        try:
            answer = self._client.get("/api/v1/components")
            now = time.time()
        except httpx.HTTPError as exc:
            self.errors.append(f"components: {exc!r}")
            return
        if answer.status_code != 200:
            self.errors.append(f"components: {answer.status_code} {answer.text[:200]}")
            return
        self.samples += 1
        by_id = {c["id"]: c for c in answer.json()}
        for name in self.names:
            component = by_id.get(name, {})
            self.states[name].add(str(component.get("state")))
            seen = component.get("last_seen")
            if seen is not None:
                late = max(0.0, now - float(seen) - self.interval_s)
                self.late_s[name] = max(self.late_s[name], late)


def false_downs(events: list[JSON], names: list[str], after: int) -> list[JSON]:
    """State changes of the healthy agents after event ``after``: each is a false down."""
    return [e for e in events if e["id"] > after and e["event"] == "component.state"
            and e["data"]["subject"] in names]


#: The hub's healthy agents under fuzzing: they must stay up, checked on time.
HEALTHY = ["engine-1", "driver-1"]


@dataclass
class FuzzHub:
    """The session's hub under fuzzing, its healthy agents, and where its log is."""

    hub: HubProcess
    fuzz: Fuzz
    #: The driver's direct insert link (a fixed port, from its config).
    insert_port: int
    agents: list[AgentProcess]
    #: A connection to the insert port that never says hello, and when it was opened.
    silent_insert: tuple[socket.socket, float]

    @property
    def log(self) -> Path:
        return self.hub.data_dir / f"stderr-{self.hub.starts}.log"

    def last_event(self) -> int:
        events = self.hub.events(idle=0.3)
        return int(events[-1]["id"]) if events else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- connections -------------------------------------------------------------------------


@dataclass
class Conn:
    ws: ClientConnection
    name: str
    kind: str
    registered: bool = False
    last: str | bytes | None = None
    closed: int | None = None
    reason: str = ""


@dataclass
class Fuzz:
    """One hub under fuzzing: how to reach it and what the fuzzer has learned."""

    url: str  # the hub's base URL
    ws_url: str  # its agent channel
    token: str  # the operator's
    #: credentials handed out to fuzz agents: name -> (kind, agent_id, secret)
    credentials: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    def enroll(self, kind: str) -> str:
        answer = httpx.post(f"{self.url}/api/v1/enrollments", json={"kind": kind},
                            headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    def healthy(self) -> None:
        answer = httpx.get(f"{self.url}/api/v1/health", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.text


def drain(conn: Conn, wait_s: float = 0.05, until: str = "") -> list[JSON]:
    """Read what the hub sent within ``wait_s`` or until a message of type ``until``
    (answering its health checks, as an agent does); a close is recorded on ``conn``."""
    got: list[JSON] = []
    deadline = time.monotonic() + wait_s
    while conn.closed is None:
        try:
            frame = conn.ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            conn.closed = closed.rcvd.code if closed.rcvd else 1006
            conn.reason = closed.rcvd.reason if closed.rcvd else ""
            break
        if isinstance(frame, str):
            message = json.loads(frame)
            got.append(message)
            if message.get("type") == "ping":
                try:
                    conn.ws.send(json.dumps({"type": "pong", "seq": message["seq"]}))
                except ConnectionClosed:
                    continue
            if until and message.get("type") == until:
                break
    return got


def open_conn(fuzz: Fuzz, name: str, kind: str, auth: str, delay_s: float = 0.0
              ) -> tuple[Conn, JSON | None]:
    """Connect and say hello with the given kind of credential; the welcome, if any."""
    ws = connect(fuzz.ws_url, max_size=None, open_timeout=10, close_timeout=2, legacy=True)
    conn = Conn(ws, name, kind)
    hello: JSON = {"type": "hello", "kind": kind, "name": name, "version": "fuzz"}
    known = fuzz.credentials.get(name)
    if auth == "token":
        hello["enroll_token"] = fuzz.enroll(kind)
    elif auth == "credentials" and known is not None:
        hello["kind"], hello["agent_id"], hello["secret"] = known
        conn.kind = known[0]
    elif auth == "wrong_kind":
        hello["enroll_token"] = fuzz.enroll("node" if kind != "node" else "engine")
    elif auth in ("bad_token", "credentials"):
        hello["enroll_token"] = "cre_" + secrets.token_urlsafe(16)
    elif auth == "bad_secret":
        hello["agent_id"], hello["secret"] = "ag_" + secrets.token_hex(8), "crs_nope"
    time.sleep(delay_s)
    ws.send(json.dumps(hello))
    conn.last = json.dumps(hello)
    welcome = None
    for message in drain(conn, 10, until="welcome"):
        if message.get("type") == "welcome":
            welcome = message
            break
    if welcome is not None:
        conn.registered = True
        if "secret" in welcome:
            fuzz.credentials[name] = (conn.kind, welcome["agent_id"], welcome["secret"])
    return conn, welcome


def abort(conn: Conn) -> None:
    """Drop the TCP connection without a close frame (a crash, a cable pulled)."""
    sock = conn.ws.socket
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.ws.close_socket()


def burst(fuzz: Fuzz, count: int) -> int:
    """``count`` connections made and dropped as fast as one client can: silent ones,
    garbage, refused hellos, and registrations with saved credentials; returns how many
    got a welcome."""
    welcomed = 0
    names = sorted(fuzz.credentials)
    for i in range(count):
        style = i % 5
        try:
            if style == 0:  # open and drop, never a word
                with connect(fuzz.ws_url, open_timeout=10) as ws:
                    ws.close_socket()
            elif style == 1:
                with connect(fuzz.ws_url, open_timeout=10) as ws:
                    ws.send("{{{")
                    _closed_code(ws)
            elif style == 2:
                with connect(fuzz.ws_url, open_timeout=10) as ws:
                    ws.send(b"\x00\x00\x00\x01{")
                    _closed_code(ws)
            elif names:
                name = names[i % len(names)]
                conn, welcome = open_conn(fuzz, name, "engine", "credentials")
                welcomed += welcome is not None
                if style == 3:
                    abort(conn)
                else:
                    conn.ws.close()
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
            fuzz.failures.append(f"burst connection {i}: {exc!r}")
    return welcomed


def _closed_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            ws.recv(timeout=5)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


# -- the state machine -------------------------------------------------------------------


class ChannelMachine(RuleBasedStateMachine):
    """Connections to one hub, driven by Hypothesis: every rule is something an agent (a
    broken or hostile one) can do, and checks the hub's answer against the protocol."""

    def __init__(self, fuzz: Fuzz) -> None:
        super().__init__()
        self.fuzz = fuzz
        self.conns: list[Conn] = []

    # -- helpers ----------------------------------------------------------------------

    def _expect(self, conn: Conn, allowed: frozenset[int | None], what: str,
                wait_s: float = 0.1) -> None:
        """Wait for the hub's verdict on what was just sent and check it."""
        self.fuzz.cases += 1
        if None not in allowed:  # a close is expected: give it time to come
            wait_s = 5.0
        drain(conn, wait_s)
        assert conn.closed in allowed, (
            f"{what}: the hub answered {conn.closed} ({conn.reason!r}), "
            f"expected one of {sorted(allowed, key=str)}")
        if conn.closed is not None:
            self.conns.remove(conn)
            conn.ws.close()

    def _open(self) -> list[Conn]:
        for conn in list(self.conns):  # a newer connection may have replaced it
            drain(conn, 0.0)
            if conn.closed is not None:
                assert conn.closed in DOCUMENTED, (conn.name, conn.closed, conn.reason)
                self.conns.remove(conn)
        return self.conns

    def _pick(self, data: st.DataObject) -> Conn | None:
        """One of the open connections (None when there is none left)."""
        conns = self._open()
        return data.draw(st.sampled_from(conns)) if conns else None

    def _send(self, conn: Conn, frame: str | bytes) -> None:
        conn.last = frame
        try:
            conn.ws.send(frame)
        except ConnectionClosed:
            pass  # the verdict on an earlier frame arrived meanwhile: drain sees it

    # -- rules ------------------------------------------------------------------------

    @initialize(name=st.sampled_from(FUZZ_NAMES),
                kind=st.sampled_from(["engine", "driver", "runner", "node", "hub"]))
    def registered(self, name: str, kind: str) -> None:
        """Every example starts with one registered connection, so its steps go to what
        a registered agent can send rather than to getting one."""
        self.connect(name, kind, "token", 0.0)

    @precondition(lambda self: len(self.conns) < 3)
    @rule(name=st.sampled_from(FUZZ_NAMES),
          kind=st.sampled_from(["engine", "driver", "runner", "node", "hub"]),
          auth=st.sampled_from(["token", "credentials", "bad_token", "bad_secret",
                                "wrong_kind", "none"]),
          delay_s=st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.2, 1.0]))
    def connect(self, name: str, kind: str, auth: str, delay_s: float) -> None:
        self._open()
        known = auth == "credentials" and name in self.fuzz.credentials
        conn, welcome = open_conn(self.fuzz, name, kind, auth, delay_s)
        self.fuzz.cases += 1
        for other in self.conns if welcome is not None else ():
            if other.name == name:  # it took the name over: the older one gets 4409
                drain(other, 5.0)
                assert other.closed == closecodes.REPLACED, (other.closed, other.reason)
        if auth == "token" or known:
            assert welcome is not None, (f"{auth} hello refused: {conn.closed} "
                                         f"{conn.reason!r}")
            self.conns.append(conn)
        else:
            assert welcome is None and conn.closed in REFUSED, (auth, conn.closed, conn.reason)
            conn.ws.close()

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data())
    def send_valid(self, data: st.DataObject) -> None:
        conn = self._pick(data)
        if conn is None:
            return
        message = data.draw(valid_message())
        self._send(conn, json.dumps(message))
        # A valid message may still be refused (a hub's report from an engine is fine, a
        # job report for a job it never had is acked): never an error of the hub's own.
        self._expect(conn, frozenset({None, closecodes.INVALID_MESSAGE,
                                      closecodes.UNKNOWN_TYPE}), message["type"])

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data())
    def send_mutated(self, data: st.DataObject) -> None:
        conn = self._pick(data)
        if conn is None:
            return
        mutant = data.draw(mutated())
        self._send(conn, mutant.frame)
        self._expect(conn, mutant.expect, mutant.what)

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data(), frame=binary_frames)
    def send_binary(self, data: st.DataObject, frame: bytes) -> None:
        conn = self._pick(data)
        if conn is None:
            return
        self._send(conn, frame)
        self._expect(conn, frozenset({None, closecodes.INVALID_MESSAGE}), "a binary frame")

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data(), binary=st.booleans())
    def send_oversized(self, data: st.DataObject, binary: bool) -> None:
        conn = self._pick(data)
        if conn is None:
            return
        body = json.dumps({"type": "report", "components": [{"x": "a" * MAX_FRAME_BYTES}]})
        self._send(conn, body.encode() if binary else body)
        self._expect(conn, frozenset({closecodes.MESSAGE_TOO_BIG}), "an oversized frame")

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data())
    def replay_last(self, data: st.DataObject) -> None:
        conn = self._pick(data)
        if conn is None or conn.last is None:
            return
        is_hello = isinstance(conn.last, str) and '"type": "hello"' in conn.last
        self._send(conn, conn.last)
        allowed = frozenset({closecodes.INVALID_MESSAGE}) if is_hello else frozenset(
            {None, closecodes.INVALID_MESSAGE, closecodes.UNKNOWN_TYPE})
        self._expect(conn, allowed, "a replayed frame")

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data(), seq=st.integers(-(2**63), 2**63))
    def wrong_pong(self, data: st.DataObject, seq: int) -> None:
        """Answers to checks never asked, or asked long ago: ignored, never an error."""
        conn = self._pick(data)
        if conn is None:
            return
        self._send(conn, json.dumps({"type": "pong", "seq": seq}))
        self._expect(conn, frozenset({None}), "a pong with a wrong seq")

    @precondition(lambda self: bool(self.conns))
    @rule(data=st.data(), clean=st.booleans())
    def disconnect(self, data: st.DataObject, clean: bool) -> None:
        conn = self._pick(data)
        if conn is None:
            return
        self.conns.remove(conn)
        if clean:
            conn.ws.close()
        else:
            abort(conn)
        self.fuzz.cases += 1

    @rule(frame=st.one_of(st.text(max_size=40), st.binary(max_size=40)))
    def garbage_before_hello(self, frame: str | bytes) -> None:
        with connect(self.fuzz.ws_url, max_size=None, open_timeout=10) as ws:
            ws.send(frame)
            code = _closed_code(ws)
        self.fuzz.cases += 1
        assert code in (closecodes.INVALID_MESSAGE, closecodes.UNKNOWN_TYPE,
                        closecodes.AUTH_FAILED, closecodes.TRY_AGAIN_LATER), (frame, code)

    @invariant()
    def hub_answers(self) -> None:
        self.fuzz.healthy()

    def teardown(self) -> None:
        for conn in self.conns:
            conn.ws.close()


# -- job reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One thing a runner sends about a job: a journal entry or an output chunk."""

    frame: str
    seq: int | None  # a job.event's seq (None: output, or a refused frame)
    valid: bool  # does the codec accept it (else: 4400)
    mine: bool  # about the job the runner was offered (else: another id)


@st.composite
def job_reports(draw: st.DrawFn, job_id: str) -> Report:
    """Reports with sequence numbers good and bad: replayed, out of order, gaps, zero,
    negative and huge ones; the wrong job; output at odd offsets, bad base64."""
    mine = draw(st.booleans() | st.just(True))
    target = job_id if mine else draw(st.sampled_from(["j_nosuchjob", "", job_id + "x"]))
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.sampled_from([base64.b64encode(b"out\n").decode(), "a", "!!", ""]))
        offset = draw(st.integers(-2, 40) | st.just(2**62))
        valid = data != "a" and data != "!!" and offset >= 0
        return Report(json.dumps({"type": "job.output", "job_id": target, "offset": offset,
                                  "data": data}), None, valid, mine)
    seq = draw(st.integers(1, 8) | st.sampled_from([0, -1, 2**62]))
    event = draw(st.sampled_from(["accepted", "started", "progress", "ended"]))
    body: JSON = {"type": "job.event", "job_id": target, "seq": seq, "event": event,
                  "ts": draw(st.floats(0, 2e9))}
    valid = seq >= 1
    if event == "progress":
        body["progress"] = draw(st.sampled_from([0.5, 1.0, 0.0, 1.5, -0.1]))
        valid = valid and 0.0 <= body["progress"] <= 1.0
    if event == "ended" and draw(st.integers(0, 3)):
        body["state"] = draw(st.sampled_from(["succeeded", "failed", "exploded"]))
        body["exit_code"] = draw(st.integers(-9, 3))
        valid = valid and body["state"] != "exploded"
    elif event == "ended":
        valid = False  # an end without its state: the model refuses it
    return Report(json.dumps(body), seq if valid else None, valid, mine)


class FuzzRunner:
    """A runner that is nothing but a socket: it says ready and takes offers."""

    def __init__(self, fuzz: Fuzz, name: str) -> None:
        self.fuzz = fuzz
        self.name = name
        self.jobs: list[str] = []
        self.conn: Conn | None = None

    def connected(self) -> Conn:
        if self.conn is None or self.conn.closed is not None:
            known = self.name in self.fuzz.credentials
            conn, welcome = open_conn(self.fuzz, self.name, "runner",
                                      "credentials" if known else "token")
            assert welcome is not None, (conn.closed, conn.reason)
            conn.ws.send(json.dumps({
                "type": "runner.state", "state": "ready", "jobs": self.jobs,
                "free": {"cpus": 64, "memory_mb": 65536, "disk_mb": 10**6, "gpus": 0}}))
            self.conn = conn
        return self.conn

    def take_offer(self) -> str:
        """Submit a job over HTTP and wait until the hub offers it to this runner."""
        answer = self.fuzz_http("POST", "/api/v1/jobs", json={
            "kind": "command", "needs": {"cpus": 0}, "payload": {"argv": [sys.executable]}})
        assert answer.status_code == 201, answer.text
        job_id = str(answer.json()["id"])
        conn = self.connected()

        def offered() -> bool:
            return any(m.get("type") == "job.offer" and m.get("job_id") == job_id
                       for m in drain(conn, 0.2))

        wait_until(offered, 15, f"the offer of {job_id}")
        self.jobs = [job_id]
        return job_id

    def close(self) -> None:
        """Sign off, so the next runner gets the offers."""
        if self.conn is not None:
            self.conn.ws.close()
            self.conn = None  # the next round connects afresh

    def fuzz_http(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.fuzz.url + path, timeout=10,
                             headers={"Authorization": f"Bearer {self.fuzz.token}"}, **kw)

    def ack_for(self, job_id: str) -> dict[str, Any]:
        """The next ``job.ack`` for ``job_id`` (a refused frame: reconnect, and the
        ``ready`` brings the hub's ack of what it holds)."""
        found: list[dict[str, Any]] = []

        def acked() -> bool:
            conn = self.connected()
            found.extend(m for m in drain(conn, 0.2, until="job.ack")
                         if m.get("type") == "job.ack" and m.get("job_id") == job_id)
            return bool(found)

        wait_until(acked, 10, f"an ack for {job_id}")
        return found[-1]



FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def job_example(runner: FuzzRunner, data: st.DataObject) -> None:
    """One job offered to ``runner``, then 1-8 fuzzed reports about it (or others); the
    hub's acks must follow the highest ``seq`` applied, its refusals be 4400s, and the
    job's view stay answerable and never leave a final state."""
    job_id = runner.take_offer()
    applied, ended = 0, False
    for _ in range(data.draw(st.integers(1, 8))):
        report = data.draw(job_reports(job_id))
        conn = runner.connected()
        conn.ws.send(report.frame)
        runner.fuzz.cases += 1
        if not report.valid:
            drain(conn, 5)
            assert conn.closed == closecodes.INVALID_MESSAGE, (report, conn.closed,
                                                               conn.reason)
            assert runner.ack_for(job_id)["seq"] == applied  # what the hub holds
        elif report.seq is not None:
            target = json.loads(report.frame)["job_id"]
            ack = runner.ack_for(target)
            if report.mine:
                applied = max(applied, report.seq)
                assert ack["seq"] == applied, (report, ack)
            else:
                assert ack["seq"] == report.seq, (report, ack)
        else:
            drain(conn, 0.05)
            assert conn.closed is None, (report, conn.closed, conn.reason)
        view = runner.fuzz_http("GET", f"/api/v1/jobs/{job_id}")
        assert view.status_code == 200, view.text
        state = view.json()["state"]
        assert 0.0 <= view.json()["progress"] <= 1.0
        assert not (ended and state not in FINAL), f"{job_id} left a final state"
        ended = state in FINAL



def fuzz_jobs(runner: FuzzRunner, seed: int, examples: int,
              phases: tuple[Phase, ...] = (Phase.explicit, Phase.generate)) -> None:
    """``examples`` jobs offered to ``runner``, each with its fuzzed reports (the CI test
    and the long run); the runner's connection is closed at the end."""

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=phases)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        job_example(runner, data)

    try:
        run()
    finally:
        runner.close()
