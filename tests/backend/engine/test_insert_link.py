"""The direct insert link over real loopback sockets: the driver's server on its own event
loop (in a thread), the engine's link and router in this one."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from backend.audio.errors import InstanceError
from backend.driver.insert_server import InsertServer, parse_listen
from backend.engine.insert_link import DirectLink
from backend.engine.inserts import InsertRouter, RemoteInstance
from backend.protocol import frames, insertlink
from backend.protocol.tasks import InsertLink


def doubled(frame: bytes) -> bytes:
    """A stand-in driver: every insert comes back twice as loud (run 99: never)."""
    header, payload = frames.unpack(frame)
    if header["run"] == 99:
        return b""
    block = frames.block_from(payload, header["dtype"], header["ch"])
    reply = {**header, "k": "insert_result", "report": {"seq": header["seq"]}}
    return frames.pack(reply, frames.block_bytes(block * 2.0))


class Driver:
    """An InsertServer on an event loop of its own, as in a driver process."""

    def __init__(self, sealed: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = InsertServer(doubled)
        self.link = self.call(self.server.start("127.0.0.1", 0, sealed=sealed))

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(params=[False, True], ids=["plain", "sealed"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    d = Driver(sealed=request.param)
    yield d
    d.close()


def insert(seq: int, block: np.ndarray) -> bytes:
    header = {"k": "insert", "task": "t", "iid": "d.comp", "driver": "d", "run": 1,
              "seq": seq, "reset": seq == 1, "ch": 2, "dtype": "float64"}
    return frames.pack(header, frames.block_bytes(block))


def test_blocks_come_back_processed_and_in_order(driver: Driver) -> None:
    results: list[tuple[int, np.ndarray]] = []
    done = threading.Event()

    def on_result(header: dict[str, Any], payload: memoryview) -> None:
        results.append((header["seq"], frames.block_from(payload, "float64", 2).copy()))
        if len(results) == 20:
            done.set()

    link = DirectLink("d", driver.link, "engine-1", on_result, lambda reason: None)
    blocks = [np.random.default_rng(i).uniform(-1, 1, (4096, 2)) for i in range(20)]
    for seq, block in enumerate(blocks, 1):
        link.send(insert(seq, block))
    assert done.wait(5)
    assert [seq for seq, _ in results] == list(range(1, 21))
    for (_, got), sent in zip(results, blocks, strict=True):
        assert np.array_equal(got, sent * 2.0)  # float64 both ways: exact
    link.close()


def test_a_wrong_key_is_refused_with_the_reason(driver: Driver) -> None:
    wrong = InsertLink(host="127.0.0.1", port=driver.link.port, key="x" * 43,
                       sealed=driver.link.sealed)
    reason = "could not prove it holds the insert key" if wrong.sealed else "wrong insert key"
    with pytest.raises(ConnectionRefusedError, match=reason):
        DirectLink("d", wrong, "engine-1", lambda h, p: None, lambda reason: None)


def test_a_sealed_link_keeps_the_key_and_the_audio_off_the_wire() -> None:
    """What crosses the socket, captured: neither the key nor a sample in clear."""
    driver = Driver(sealed=True)
    captured = bytearray()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        tap = InsertLink(host="127.0.0.1", port=listener.getsockname()[1],
                         key=driver.link.key, sealed=True)

        def relay() -> None:  # engine <-> tap <-> driver, recording the engine's bytes
            inbound, _ = listener.accept()
            outbound = socket.create_connection(("127.0.0.1", driver.link.port))
            back = threading.Thread(target=_pump, args=(outbound, inbound, None), daemon=True)
            back.start()
            _pump(inbound, outbound, captured)

        threading.Thread(target=relay, daemon=True).start()
        got: list[np.ndarray] = []
        done = threading.Event()

        def on_result(header: dict[str, Any], payload: memoryview) -> None:
            got.append(frames.block_from(payload, "float64", 2).copy())
            done.set()

        link = DirectLink("d", tap, "engine-1", on_result, lambda reason: None)
        block = np.full((1024, 2), 0.123456789, dtype=np.float64)
        link.send(insert(1, block))
        assert done.wait(5)
        assert np.array_equal(got[0], block * 2.0)
        link.close()
    driver.close()
    assert driver.link.key.encode() not in captured
    assert block.tobytes()[:64] not in captured and b"insert" not in captured


def _pump(source: socket.socket, target: socket.socket, record: bytearray | None) -> None:
    try:
        while chunk := source.recv(65536):
            if record is not None:
                record += chunk
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        target.close()


def test_a_plain_link_is_refused_between_machines() -> None:
    remote = InsertLink(host="192.0.2.7", port=9, key="k" * 43)  # TEST-NET: never dialled
    with pytest.raises(ConnectionRefusedError, match="must not cross machines"):
        DirectLink("d", remote, "e", lambda h, p: None, lambda reason: None)


def test_nothing_listening_fails_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
    began = time.monotonic()
    with pytest.raises(OSError):
        DirectLink("d", InsertLink(host="127.0.0.1", port=port, key="k" * 43), "e",
                   lambda h, p: None, lambda reason: None)
    assert time.monotonic() - began < 1.0


def test_garbage_closes_that_connection_only(driver: Driver) -> None:
    with socket.create_connection(("127.0.0.1", driver.link.port)) as rogue:
        rogue.sendall(b"\xff\xff\xff\xff not a frame")
        rogue.settimeout(5)
        assert rogue.recv(100) == b""  # closed by the driver
    got: Future[int] = Future()
    link = DirectLink("d", driver.link, "engine-1",
                      lambda h, p: got.set_result(h["seq"]), lambda reason: None)
    link.send(insert(1, np.zeros((16, 2))))
    assert got.result(5) == 1
    link.close()


def test_a_driver_that_goes_away_is_reported_lost(driver: Driver) -> None:
    lost: Future[str] = Future()
    link = DirectLink("d", driver.link, "engine-1", lambda h, p: None, lost.set_result)
    driver.close()
    assert "closed" in lost.result(5)
    assert not link.alive
    with pytest.raises(ConnectionError, match="closed"):
        link.send(insert(1, np.zeros((16, 2))))


class Relay:
    """The engine's loop and its hub connection, recording what would go to the hub."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sent: list[dict[str, Any]] = []

    async def send(self, frame: bytes) -> bool:
        self.sent.append(frames.unpack(frame)[0])
        return True

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_the_router_uses_a_working_link_and_the_hub_for_the_rest(driver: Driver) -> None:
    relay = Relay()
    try:
        router = InsertRouter(relay.loop, relay.send, timeout_s=2.0, engine="engine-1")
        dead = InsertLink(host="127.0.0.1", port=1, key="k" * 43)  # nothing listens there
        router.use_links({"d": driver.link, "far": dead})
        run = router.new_run()
        near = RemoteInstance(router, "t", run, "d", "d.comp", {})
        block = np.full((64, 2), 0.25)
        assert np.array_equal(near.process(block), block * 2.0)
        assert near.report() == {"seq": 1.0}
        far = RemoteInstance(router, "t", run, "far", "far.eq", {})
        with pytest.raises(InstanceError, match="did not process block 1"):
            router.timeout_s = 0.3
            far.process(block)  # went to the hub, where no driver answers in this test
        assert [h["driver"] for h in relay.sent] == ["far"]
        assert router.links() == {"d": "direct", "far": "hub"}
        router.close()
    finally:
        relay.close()


def test_blocks_waiting_on_a_lost_link_fail_at_once(driver: Driver) -> None:
    relay = Relay()
    try:
        router = InsertRouter(relay.loop, relay.send, timeout_s=30.0, engine="engine-1")
        router.use_links({"d": driver.link})
        remote = RemoteInstance(router, "t", router.new_run(), "d", "d.comp", {})
        remote.process(np.zeros((16, 2)))  # the link is open
        silent = RemoteInstance(router, "t", 99, "d", "d.comp", {})  # never answered
        collect = silent.submit(np.zeros((16, 2)))
        began = time.monotonic()
        driver.close()  # the driver goes away
        with pytest.raises(InstanceError, match="d went down"):
            collect()
        assert time.monotonic() - began < 5.0  # not the 30 s timeout
    finally:
        relay.close()


def test_insert_listen_is_host_port_or_off() -> None:
    assert parse_listen(None) == ("127.0.0.1", 0)
    assert parse_listen("0.0.0.0:7000") == ("0.0.0.0", 7000)
    assert parse_listen("[::1]:7000") == ("::1", 7000)
    assert parse_listen("OFF") is None
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("7000")
    assert insertlink.MAX_FRAME >= 8192 * 2 * 8
