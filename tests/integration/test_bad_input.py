"""Bad input gets a clear error and the hub keeps running, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from processes import AgentProcess, HubProcess
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.agents.urls import agent_channel_url


async def _close_of(url: str, *frames: str | bytes) -> tuple[int, str]:
    """Send frames on a fresh connection; return the close code and reason the hub sent."""
    async with connect(url, max_size=None) as ws:
        try:
            for frame in frames:
                await ws.send(frame)
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "the hub dropped the connection without a reason"
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("not closed")


def _hello(hub: HubProcess, name: str) -> str:
    return json.dumps({"type": "hello", "kind": "engine", "name": name,
                       "enroll_token": hub.enroll("engine")})


@pytest.mark.parametrize(
    ("frames", "code", "words"),
    [
        (["this is not json"], 4400, "malformed JSON"),
        ([b"\x00binary"], 4400, "binary frame"),
        (['{"type": "pong", "seq": 1}'], 4400, "the first message must be hello"),
        (['{"type": "hello", "kind": "engine", "name": "x"}'], 4401, "neither"),
        (['{"type": "hello", "kind": "blender", "name": "x"}'], 4400, "kind"),
    ],
)
def test_garbage_before_hello_is_refused_with_a_reason(
    hub: HubProcess, frames: list[str | bytes], code: int, words: str
) -> None:
    got_code, reason = asyncio.run(_close_of(agent_channel_url(hub.url), *frames))
    assert (got_code, words in reason) == (code, True), reason


def test_misbehaving_agents_are_disconnected_and_others_unaffected(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    spawn_agent(hub, "good", "engine")
    hub.wait_state("good", "up")
    url = agent_channel_url(hub.url)
    cases: list[tuple[str, list[str | bytes], int, str]] = [
        ("garbage", ["{{{{"], 4400, "malformed JSON"),
        ("unknown", ['{"type": "teleport"}'], 4404, "unknown message type 'teleport'"),
        ("oversized", [json.dumps({"type": "report", "components": [{"x": "a" * 1_100_000}]})],
         1009, "limit"),
        ("wrongfield", ['{"type": "pong", "seq": "soon"}'], 4400, "seq"),
        ("twice", ['{"type": "hello", "kind": "engine", "name": "twice"}'], 4400, "hello sent"),
    ]

    async def run() -> list[tuple[str, int, str]]:
        results = []
        for name, frames, _code, _words in cases:
            code, reason = await _close_of(url, _hello(hub, name), *frames)
            results.append((name, code, reason))
        return results

    for (name, code, reason), (_, _, want_code, words) in zip(asyncio.run(run()), cases,
                                                                strict=True):
        assert code == want_code, (name, code, reason)
        assert words in reason, (name, reason)
        assert hub.components()[name]["state"] == "down"
    # The good agent never noticed; the hub still answers.
    assert hub.components()["good"]["state"] == "up"
    good_changes = [e for e in hub.events() if e["data"]["subject"] == "good"
                    and e["event"] == "component.state"]
    assert [c["data"]["data"]["new"] for c in good_changes] == ["up"]
    assert hub.client.get(f"{hub.url}/api/v1/health").json()["status"] == "ok"


def test_silent_connections_are_closed_with_a_reason(hub: HubProcess) -> None:
    """A socket that never says hello is not kept forever (10 s budget: skip the wait)."""
    async def run() -> tuple[int, str]:
        async with connect(agent_channel_url(hub.url)) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 15)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("not closed")

    code, reason = asyncio.run(run())
    assert code == 4408 and "no hello" in reason


# -- HTTP: 401, 404, 422 --------------------------------------------------------------


def _call(hub: HubProcess, method: str, path: str, **kw: Any) -> Any:
    return hub.client.request(method, f"{hub.url}{path}", **kw)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/enrollments", {"kind": "engine"}),
        ("PUT", "/api/v1/configs/engine-1", {"a": 1}),
    ],
)
def test_mutating_calls_need_the_operator_token(
    hub: HubProcess, method: str, path: str, body: dict[str, Any]
) -> None:
    missing = _call(hub, method, path, json=body, headers={"Authorization": ""})
    assert missing.status_code == 401
    assert "missing token" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = _call(hub, method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "unknown or revoked token" in wrong.json()["detail"]
    basic = _call(hub, method, path, json=body, headers={"Authorization": "Basic " + hub.token})
    assert basic.status_code == 401


def test_unknown_ids_are_404(hub: HubProcess) -> None:
    r = _call(hub, "GET", "/api/v1/components/nobody")
    assert r.status_code == 404 and "no component 'nobody'" in r.json()["detail"]
    assert _call(hub, "GET", "/api/v1/nothing-here").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("POST", "/api/v1/enrollments", {"content": b"{not json"}, "body"),
        ("POST", "/api/v1/enrollments", {"json": {"kind": "engine", "colour": 1}}, "colour"),
        ("POST", "/api/v1/enrollments", {"json": {"kind": "toaster"}}, "kind"),
        ("POST", "/api/v1/enrollments", {"json": {"kind": "engine", "ttl_s": "soon"}}, "ttl_s"),
        ("POST", "/api/v1/enrollments", {"json": {"kind": "engine", "ttl_s": -5}}, "ttl_s"),
        ("POST", "/api/v1/enrollments", {"json": {}}, "kind"),
        ("PUT", "/api/v1/configs/engine-1", {"json": [1, 2]}, "body"),
        ("PUT", "/api/v1/configs/engine-1", {"content": b"nope"}, "body"),
        ("PUT", "/api/v1/configs/bad%20name", {"json": {}}, "component_id"),
        ("GET", "/api/v1/components/-dash", {}, "component_id"),
        ("GET", "/api/v1/events?after=-1", {}, "after"),
    ],
)
def test_malformed_requests_are_422_naming_the_field(
    hub: HubProcess, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    headers = {**hub.auth, "content-type": "application/json"}
    r = _call(hub, method, path, headers=headers, **kwargs)
    assert r.status_code == 422, r.text
    detail = r.json()["errors"]
    assert any(field in [str(p) for p in d["loc"]] for d in detail), detail
    assert hub.client.get(f"{hub.url}/api/v1/health").status_code == 200


def test_a_bad_last_event_id_is_422(hub: HubProcess) -> None:
    r = hub.client.get(f"{hub.url}/api/v1/events", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
