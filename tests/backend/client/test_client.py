"""The client against a real hub and node on a loopback port: how each failure reads."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend import API_VERSION
from backend.client import (
    AttachError,
    ClientError,
    Follower,
    HubClient,
    HubError,
    HubUnreachable,
    NodeClient,
    probe,
)
from backend.host import Host, HostSettings


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    running = Host(HostSettings(data_dir=tmp_path / "hub", port=0))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(host: Host) -> AsyncIterator[HubClient]:
    async with HubClient(host.base_url, host.hub.operator_token) as hub:
        yield hub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refusal_carries_the_hubs_status_and_words(client: HubClient) -> None:
    with pytest.raises(HubError) as missing:
        await client.task("t_000000000000")
    assert missing.value.status == 404
    assert "t_000000000000" in missing.value.message
    with pytest.raises(HubError) as malformed:
        await client.task("no-such-task")
    assert malformed.value.status == 422
    assert "path.task_id: String should match pattern" in malformed.value.message
    with pytest.raises(HubError) as invalid:
        await client.submit_job({"kind": "command"})
    assert invalid.value.status == 422
    assert isinstance(invalid.value.detail, list)  # field errors with their location


async def test_no_answer_is_unreachable_with_a_sentence(tmp_path: Path) -> None:
    async with HubClient(f"http://127.0.0.1:{free_port()}", "t", timeout=2) as dead:
        with pytest.raises(HubUnreachable) as gone:
            await dead.components()
    assert gone.value.status == 503 and "is the hub running" in gone.value.message
    assert isinstance(gone.value, ClientError)


async def test_a_wrong_token_is_refused_on_changes_and_said_on_attach(host: Host) -> None:
    async with HubClient(host.base_url, "not-the-token") as wrong:
        with pytest.raises(HubError) as refused:
            await wrong.create_enrollment("engine")
        assert refused.value.status == 401
    with pytest.raises(AttachError) as attach:
        await probe(host.base_url, "not-the-token")
    assert "DATA/admin.token" in attach.value.message
    info = await probe(host.base_url + "/api/v1/", host.hub.operator_token)
    assert info.url == host.base_url and info.api == API_VERSION


async def test_a_download_that_fails_leaves_no_file(client: HubClient, tmp_path: Path) -> None:
    target = tmp_path / "out" / "render.wav"
    with pytest.raises(HubError):
        await client.download("no-such-task", "r1", target)
    assert not target.exists() and not target.with_name("render.wav.part").exists()


async def test_a_task_stream_of_an_unknown_task_ends_saying_why(client: HubClient) -> None:
    async with client.task_stream("t_000000000000") as stream:
        assert await stream.recv() is None
    assert "4404" in stream.closed_because and "t_000000000000" in stream.closed_because


async def test_the_embedded_node_through_the_proxy_and_directly(
        host: Host, client: HubClient) -> None:
    proxied = [f["name"] for f in await client.node("local").flows()]
    assert proxied, "the embedded node offers its example flows"
    direct = NodeClient.direct(host.base_url, host.hub.operator_token)
    try:
        assert [f["name"] for f in await direct.flows()] == proxied
        with pytest.raises(HubError) as unknown:
            await direct.start("no-such-flow", {})
        assert unknown.value.status in (404, 422)
    finally:
        await direct.aclose()


async def test_every_event_of_the_hub_once_from_a_resume_point(
        host: Host, client: HubClient) -> None:
    for n in range(3):
        await host.hub.events.append("test.e", f"s{n}", {"n": n})
    newest = (await client.about()).last_event_id
    seen = []
    events = client.events(Follower(newest - 2))
    async for record in events:
        seen.append(record.data["subject"])
        if len(seen) == 2:
            break
    await events.aclose()
    assert seen == ["s1", "s2"]
