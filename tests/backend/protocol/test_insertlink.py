"""The direct insert link's framing and handshake, without sockets."""

from __future__ import annotations

import pytest

from backend.protocol import frames, insertlink, insertseal

KEY = "k" * 43


def test_a_frame_is_sent_as_its_length_then_itself() -> None:
    frame = frames.pack({"k": "insert"}, b"\x00" * 10)
    prefix, body = insertlink.framed(frame)
    assert body is frame and insertlink.frame_length(prefix) == len(frame)


@pytest.mark.parametrize("length", [0, insertlink.MAX_FRAME + 1, 2**32 - 1])
def test_a_length_no_frame_can_have_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="is not an insert-link frame"):
        insertlink.frame_length(insertlink.LENGTH.pack(length))


def test_the_right_key_is_welcomed() -> None:
    engine, answer = insertlink.check_hello(insertlink.hello(KEY, "engine-1"), KEY)
    assert engine == "engine-1"
    insertlink.check_welcome(answer)


@pytest.mark.parametrize("first", [
    insertlink.hello("x" * 43, "engine-1"),
    frames.pack({"k": "insert", "key": KEY}),
    frames.pack({"k": "hello"}),
    b"\x00\x00\x00\x02{}",
    b"garbage",
])
def test_anything_else_first_is_refused_with_the_reason(first: bytes) -> None:
    engine, answer = insertlink.check_hello(first, KEY)
    assert engine == ""
    with pytest.raises(ConnectionRefusedError, match=r"wrong insert key|must be a hello"):
        insertlink.check_welcome(answer)


@pytest.mark.parametrize(("link", "engine", "driver", "offered"), [
    ("127.0.0.1", "127.0.0.1", "127.0.0.1", True),   # all on one machine
    ("::1", "10.0.0.5", "10.0.0.5", True),          # same machine, seen by its LAN address
    ("127.0.0.1", "10.0.0.7", "10.0.0.5", False),   # the engine's loopback is not the driver's
    ("localhost", "10.0.0.7", "10.0.0.5", False),
    ("10.0.0.5", "10.0.0.7", "10.0.0.5", True),     # a driver listening on the LAN
    ("rack-2.studio.lan", "10.0.0.7", "10.0.0.5", True),
])
def test_a_loopback_link_is_offered_only_on_the_drivers_machine(
        link: str, engine: str, driver: str, offered: bool) -> None:
    from backend.hub.tasks.service import reachable

    assert reachable(link, engine, driver) is offered


def test_a_sealed_handshake_proves_the_driver_and_seals_each_direction() -> None:
    nonce = insertseal.new_nonce()
    hello = insertlink.sealed_hello("engine-1", nonce)
    assert KEY.encode() not in hello
    engine, welcome, driver = insertlink.check_sealed_hello(hello, KEY)
    assert engine == "engine-1" and driver is not None
    send, receive = insertlink.check_sealed_welcome(welcome, KEY, nonce)
    for i in range(3):
        frame = f"block {i}".encode() * 100
        sealed = send.seal(frame)
        assert frame not in sealed and len(sealed) == len(frame) + insertseal.OVERHEAD
        assert driver[1].open(sealed) == frame
    assert receive.open(driver[0].seal(b"result")) == b"result"


def test_a_sealed_link_refuses_impostors_and_tampering() -> None:
    nonce = insertseal.new_nonce()
    _, welcome, driver = insertlink.check_sealed_hello(
        insertlink.sealed_hello("engine-1", nonce), KEY)
    assert driver is not None
    with pytest.raises(ConnectionRefusedError, match="could not prove"):
        insertlink.check_sealed_welcome(welcome, "y" * 43, nonce)  # a driver without the key
    send, _ = insertlink.check_sealed_welcome(welcome, KEY, nonce)
    first, second = send.seal(b"one"), send.seal(b"two")
    with pytest.raises(ValueError, match="failed authentication"):
        driver[1].open(second)  # out of order
    assert driver[1].open(first) == b"one"
    with pytest.raises(ValueError, match="failed authentication"):
        driver[1].open(first)  # replayed
    tampered = bytearray(second)
    tampered[0] ^= 1
    with pytest.raises(ValueError, match="failed authentication"):
        driver[1].open(bytes(tampered))
    # An engine with the wrong key gets through the hello but not its first frame.
    impostor, _ = insertseal.engine_sealers("z" * 43, nonce, bytes(16))
    with pytest.raises(ValueError):
        driver[1].open(impostor.seal(b"block"))
    # A plain hello to a sealed driver is refused with the reason.
    name, answer, none = insertlink.check_sealed_hello(insertlink.hello(KEY, "old"), KEY)
    assert name == "" and none is None and b"sealed" in answer
