"""The direct insert link under fuzzing, from both ends.

- The real driver's insert port (``insert_listen`` from its config), before the hello:
  garbage, impossible and oversized length prefixes, cut frames, wrong keys, and a few
  hundred connects (silence: the plain test below, it takes the hello deadline); the
  driver must stay up at the hub (checked on time, no false down), keep serving (a
  hello is still answered) and log no exception.
- A driver's insert server in-process (its key known), after the hello: ``insert`` frames
  with fuzzed headers and payloads, out of order and replayed, on a real :class:`Driver`
  rack: each is answered in order, or the connection is closed with a logged reason.
- The engine's end (:class:`DirectLink`) against a driver that answers nonsense: it fails
  with ``OSError`` within its connect budget, or reports the link lost; it never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from fuzzing import HEALTHY, FuzzHub, Watch, false_downs, tracebacks
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from backend.driver import insert_server
from backend.driver.driver import Driver
from backend.engine.insert_link import CONNECT_TIMEOUT_S, DirectLink
from backend.protocol import frames, insertlink
from backend.protocol.tasks import InsertLink

CI_SEED = 20261204
LENGTH = struct.Struct(">I")

first_frames = st.one_of(
    st.binary(max_size=64),  # anything at all
    st.builds(lambda n, body: LENGTH.pack(n) + body,  # a prefix that lies
              st.sampled_from([0, 1, 5000, insertlink.MAX_FRAME, insertlink.MAX_FRAME + 1,
                               2**32 - 1]), st.binary(max_size=32)),
    st.builds(lambda h: b"".join(insertlink.framed(frames.pack(h))),  # a hello gone wrong
              st.fixed_dictionaries({"k": st.sampled_from(["hello", "insert", "x"])},
                                    optional={"key": st.text(max_size=50) | st.integers(),
                                              "engine": st.text(max_size=10),
                                              "nonce": st.text(max_size=40)})),
    st.builds(lambda body: b"".join(insertlink.framed(body))[:-1],  # cut short
              st.binary(min_size=1, max_size=32)),
)


def _answer(port: int, data: bytes) -> bytes:
    """Send ``data`` as a first frame, then read until the driver closes (or 8 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        sock.settimeout(8)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk


def test_the_drivers_insert_port_holds_before_the_hello(fuzz_hub: FuzzHub) -> None:
    hub, port = fuzz_hub.hub, fuzz_hub.insert_port
    driver_log = fuzz_hub.agents[1].log_path
    driver_at = driver_log.stat().st_size
    mark = fuzz_hub.last_event()
    print(f"hypothesis seed {CI_SEED}")

    @seed(CI_SEED)
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(first=first_frames)
    def run(first: bytes) -> None:
        answer = _answer(port, first)  # returns only once the driver closed it
        if answer:
            header, _ = frames.unpack(answer[LENGTH.size:])
            assert header["k"] == "refused", header

    with Watch(hub.url, hub.token, HEALTHY) as watch:
        run()
        for _ in range(200):  # connects and drops
            with socket.create_connection(("127.0.0.1", port), timeout=10):
                pass
        # Still serving: a wrong key is answered with the reason.
        answer = _answer(port, b"".join(insertlink.framed(insertlink.hello("nope", "fz"))))
        assert b"wrong insert key" in answer
    assert false_downs(hub.events(after=mark, idle=0.3), HEALTHY, mark) == []
    assert watch.states["driver-1"] == {"up"}, (watch.states, watch.samples, watch.errors[:3])
    assert watch.late_s["driver-1"] < 2.0
    assert tracebacks(driver_log, driver_at) == []


def test_a_silent_or_oversized_hello_is_not_kept(fuzz_hub: FuzzHub) -> None:
    """Found: the driver's insert server had no deadline for the hello and took a first
    frame of up to 16 MiB from anyone: a silent connection was kept for good (each an open
    file: enough of them and the driver could accept no engine), and an unauthenticated
    peer could make it buffer 16 MiB per connection."""
    port = fuzz_hub.insert_port
    # Opened when the session's driver came up (so the deadline's wait overlaps the
    # other tests) and never written to.
    sock, opened = fuzz_hub.silent_insert
    sock.settimeout(max(1.0, opened + insert_server.HELLO_TIMEOUT_S + 10 - time.monotonic()))
    assert sock.recv(1) == b""  # closed by the driver (before the fix: a timeout here)
    sock.close()
    big = LENGTH.pack(insert_server.MAX_HELLO_BYTES + 1) + b"x" * 1000
    assert _answer(port, big) == b""  # closed at once, the 4 KiB+ frame never buffered


# -- after the hello: a real driver rack, in-process --------------------------------------


def _insert(header: dict[str, Any], payload: bytes) -> bytes:
    return frames.pack({"k": "insert", **header}, payload)


insert_frames = st.one_of(
    st.builds(_insert, st.fixed_dictionaries({}, optional={
        "task": st.sampled_from(["t1", "t2", ""]) | st.integers(),
        "iid": st.sampled_from(["i1", "i2"]) | st.none(),
        "run": st.integers(-1, 3), "seq": st.integers(-1, 10**12) | st.text(max_size=3),
        "reset": st.booleans() | st.integers(), "ch": st.integers(-1, 3) | st.text(max_size=2),
        "dtype": st.sampled_from(["float64", "float32", "int8", "object", "V3", "nonsense"]),
    }), st.binary(max_size=96)),
    st.builds(lambda body: frames.pack({"k": "audio", "task": "t1"}, body), st.binary(max_size=16)),
    st.binary(max_size=40),  # not a frame at all
)


def test_insert_frames_after_the_hello_are_answered_in_order_or_refused() -> None:
    driver = Driver(SimpleNamespace(handlers={}))  # type: ignore[arg-type]
    driver.configure({"instances": [{"id": "i1", "model": "gain", "params": {}}]})
    driver.tasks["t1"] = {"i1": {}}

    async def serve(batches: list[list[bytes]]) -> list[tuple[int, int, bool]]:
        link = await driver.inserts.start("127.0.0.1", 0)
        outcomes = []
        try:
            for batch in batches:
                reader, writer = await asyncio.open_connection(link.host, link.port)
                writer.writelines(insertlink.framed(insertlink.hello(link.key, "fz")))
                for frame in batch:
                    writer.writelines(insertlink.framed(frame))
                writer.write_eof()
                assert await _frame(reader) == frames.pack({"k": "welcome"})
                answered = 0
                while (reply := await _frame(reader)) is not None:
                    header, _ = frames.unpack(reply)
                    assert header["k"] == "insert_result", header
                    answered += 1
                writer.close()
                wanted = sum(1 for f in batch if _is_insert(f))
                outcomes.append((answered, wanted, answered == wanted))
            # Still serving after all of that: a clean block is processed.
            reader, writer = await asyncio.open_connection(link.host, link.port)
            writer.writelines(insertlink.framed(insertlink.hello(link.key, "fz")))
            writer.writelines(insertlink.framed(_insert(
                {"task": "t1", "iid": "i1", "run": 1, "seq": 1, "reset": True, "ch": 2,
                 "dtype": "float64"}, bytes(8 * 2 * 16))))
            await _frame(reader)
            reply = await _frame(reader)
            assert reply is not None and "error" not in frames.unpack(reply)[0]
            writer.close()
        finally:
            await driver.inserts.close()
        return outcomes

    @seed(CI_SEED)
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(batches=st.lists(st.lists(insert_frames, max_size=6), min_size=1, max_size=3))
    def run(batches: list[list[bytes]]) -> None:
        for answered, wanted, _ in asyncio.run(asyncio.wait_for(serve(batches), 30)):
            # In order, one answer per insert, until a frame that cannot be one closes it.
            assert answered <= wanted

    run()


def _is_insert(frame: bytes) -> bool:
    try:
        return frames.unpack(frame)[0].get("k") == "insert"
    except Exception:
        return False


async def _frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        prefix = await asyncio.wait_for(reader.readexactly(4), 10)
        return await reader.readexactly(insertlink.frame_length(prefix))
    except asyncio.IncompleteReadError:
        return None


# -- the engine's end, against a driver answering nonsense ---------------------------------


class _Nonsense:
    """A loopback server that answers each connection with the given bytes, slowly."""

    def __init__(self, answer: bytes, pause_s: float, hold: bool) -> None:
        self.answer, self.pause_s, self.hold = answer, pause_s, hold
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self.sock.close()
        with conn, contextlib.suppress(OSError):  # the engine may hang up at any point
            conn.recv(65536)
            for i in range(0, len(self.answer), 3):
                conn.sendall(self.answer[i:i + 3])
                time.sleep(self.pause_s)
            if self.hold:  # no EOF to help: the engine's own deadlines must end it
                time.sleep(1.2)


welcomes = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda h: b"".join(insertlink.framed(frames.pack(h))),
              st.fixed_dictionaries({"k": st.sampled_from(["welcome", "refused", "x"])},
                                    optional={"error": st.text(max_size=10)})),
)


def test_the_engines_end_fails_fast_on_a_driver_answering_nonsense() -> None:
    """Whatever comes back (a slow trickle included), the link is open within its connect
    budget or raises ``OSError``; once open, nonsense or a close reports the link lost."""
    print(f"hypothesis seed {CI_SEED}")

    @seed(CI_SEED)
    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(welcome=welcomes, after=st.binary(max_size=24), pause_s=st.sampled_from([0, 0.3]))
    def run(welcome: bytes, after: bytes, pause_s: float) -> None:
        server = _Nonsense(welcome + after, pause_s, hold=True)
        lost: list[str] = []
        started = time.monotonic()
        try:
            link = DirectLink("fz-driver", InsertLink(host="127.0.0.1", port=server.port,
                                                      key="k" * 32), "fz-engine",
                              lambda h, p: None, lost.append)
        except OSError:
            link = None
        took = time.monotonic() - started
        assert took < CONNECT_TIMEOUT_S + 0.5, f"the connect took {took:.1f} s"
        if link is not None:  # welcomed: what follows, or the close, must be noticed
            deadline = time.monotonic() + 10
            while not lost and time.monotonic() < deadline:
                time.sleep(0.02)
            assert lost, "the link ended without the engine noticing"
            link.close()

    run()


def test_a_driver_trickling_its_welcome_cannot_hold_the_engine() -> None:
    """Found: the engine's connect timed out per read, not in all, so a driver that sent
    its welcome three bytes every 0.3 s held the graph's thread (with the links' lock)
    until it finished, and one announcing a 16 MiB welcome could hold it for days; the
    engine is meant to give up within a second and send that driver's blocks via the hub."""
    welcome = b"".join(insertlink.framed(frames.pack({"k": "welcome", "pad": "x" * 40})))
    server = _Nonsense(welcome, 0.3, hold=True)
    started = time.monotonic()
    with pytest.raises(OSError):
        DirectLink("fz-driver", InsertLink(host="127.0.0.1", port=server.port, key="k" * 32),
                   "fz-engine", lambda h, p: None, lambda reason: None)
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 0.5
    huge = _Nonsense(LENGTH.pack(insertlink.MAX_FRAME) + b"x" * 10, 0.0, hold=True)
    with pytest.raises(ConnectionError, match="not a welcome"):
        DirectLink("fz-driver", InsertLink(host="127.0.0.1", port=huge.port, key="k" * 32),
                   "fz-engine", lambda h, p: None, lambda reason: None)
