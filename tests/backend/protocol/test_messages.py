"""The agent-channel codec: valid frames parse; every kind of bad frame names its fault."""

from __future__ import annotations

import json

import pytest

from backend.errors import ProtocolViolation
from backend.protocol import (
    MAX_FRAME_BYTES,
    ConfigPush,
    Hello,
    Ping,
    Pong,
    Welcome,
    closecodes,
    decode_agent_message,
    decode_hub_message,
    encode,
)


def test_hello_round_trip() -> None:
    hello = Hello(kind="engine", name="engine-1", config={"a": 1}, enroll_token="cre_x")
    assert decode_agent_message(encode(hello)) == hello


def test_hub_messages_round_trip() -> None:
    for msg in (
        Welcome(agent_id="ag_1", config={}, health={"interval_s": 1.0}),
        Ping(seq=3),
        ConfigPush(config={"x": [1]}),
    ):
        assert decode_hub_message(encode(msg)) == msg


def test_pong_parses() -> None:
    assert decode_agent_message('{"type":"pong","seq":7}') == Pong(seq=7)


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ("{not json", closecodes.INVALID_MESSAGE, "malformed JSON"),
        ("[1,2]", closecodes.INVALID_MESSAGE, "JSON object"),
        ('{"seq": 1}', closecodes.INVALID_MESSAGE, "no string 'type'"),
        ('{"type": "dance"}', closecodes.UNKNOWN_TYPE, "unknown message type 'dance'"),
        ('{"type": "pong", "seq": "x"}', closecodes.INVALID_MESSAGE, "seq"),
        ('{"type": "pong", "seq": 1, "extra": 2}', closecodes.INVALID_MESSAGE, "extra"),
        ('{"type": "hello", "kind": "toaster", "name": "a"}', closecodes.INVALID_MESSAGE, "kind"),
        ('{"type": "hello", "kind": "engine", "name": "a b"}', closecodes.INVALID_MESSAGE, "name"),
        (b"\x00\x01", closecodes.INVALID_MESSAGE, "binary frame"),
    ],
)
def test_bad_frames_name_the_fault(frame: str | bytes, code: int, words: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        decode_agent_message(frame)
    assert info.value.code == code
    assert words in info.value.reason
    assert len(info.value.reason.encode()) <= 123  # fits a WebSocket close frame


def test_oversized_frame_is_message_too_big() -> None:
    frame = json.dumps({"type": "report", "components": [{"x": "a" * MAX_FRAME_BYTES}]})
    with pytest.raises(ProtocolViolation) as info:
        decode_agent_message(frame)
    assert info.value.code == closecodes.MESSAGE_TOO_BIG


def test_agent_types_are_not_hub_types() -> None:
    with pytest.raises(ProtocolViolation) as info:
        decode_hub_message('{"type":"pong","seq":1}')
    assert info.value.code == closecodes.UNKNOWN_TYPE
