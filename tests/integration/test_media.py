"""Media on a real hub: upload (once), fetch by token and by an engine's credentials, the
refusals (wrong hash, over the limit, unknown, in use) and reservations naming media.

One hub (with a 1 MiB limit) and one engine serve every step, so the whole file costs one
start of each."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from processes import AgentProcess, HubProcess

from backend.audio.spec import EXAMPLE
from backend.client import HubClient, HubError


def wav(seconds: float = 0.25, freq: float = 220.0) -> bytes:
    t = np.arange(int(48000 * seconds)) / 48000
    out = io.BytesIO()
    sf.write(out, 0.25 * np.sin(2 * np.pi * freq * t), 48000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_naming(sha256: str) -> dict[str, Any]:
    return {**EXAMPLE, "tracks": [{"id": "take", "source": {"type": "file", "sha256": sha256}}],
            "instances": {}}


class Media:
    """The media routes of one hub, called with the operator's token unless told."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub

    def call(self, method: str, path: str = "", **kw: Any) -> httpx.Response:
        return self.hub.client.request(method, f"{self.hub.url}/api/v1/media{path}", **kw)

    def put(self, sha256: str, data: bytes, **kw: Any) -> httpx.Response:
        return self.call("PUT", f"/{sha256}", content=data,
                         headers={"Content-Type": "application/octet-stream",
                                  **kw.pop("headers", {})}, **kw)

    def stored(self) -> list[str]:
        """Every file in the hub's media folder, part files included."""
        return sorted(p.name for p in (self.hub.data_dir / "media").iterdir())


@pytest.fixture
def studio(start_hub: Callable[..., HubProcess],
           spawn_agent: Callable[..., AgentProcess]) -> tuple[HubProcess, AgentProcess]:
    hub = start_hub("--media-limit-mb", "1")
    engine = spawn_agent(hub, "engine-1", "engine")
    return hub, engine


def test_media_upload_fetch_refusals_and_tasks(
        studio: tuple[HubProcess, AgentProcess], tmp_path: Path) -> None:
    hub, engine = studio
    media = Media(hub)
    data = wav()
    digest = sha(data)

    first = media.put(digest, data)
    assert first.status_code == 201, first.text
    assert first.json() == {"sha256": digest, "bytes": len(data),
                            "created_at": first.json()["created_at"], "used_by": []}
    again = media.put(digest, data)
    assert again.status_code == 200 and again.json() == first.json()
    assert media.stored() == [digest]

    other = wav(freq=440.0)
    wrong = media.put(digest[::-1], other)
    assert wrong.status_code == 422, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert f"the body's SHA-256 is {sha(other)}" in wrong.json()["detail"]
    big = bytes(1024 * 1024 + 1)
    too_big = media.put(sha(big), big)
    assert too_big.status_code == 413, too_big.text
    assert "--media-limit-mb" in too_big.json()["detail"]
    assert "1048576 bytes (1 MiB)" in too_big.json()["detail"]
    assert media.call("PUT", f"/{digest}").status_code == 422  # no body: not that file
    assert media.stored() == [digest]  # nothing of any left behind

    assert media.call("GET", f"/{digest}").content == data
    viewer = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": "wall", "kind": "viewer"})
    as_viewer = {"Authorization": f"Bearer {viewer.json()['token']}"}
    fetched = media.call("GET", f"/{digest}", headers=as_viewer)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["content-type"] == "application/octet-stream"
    assert media.put(digest, data, headers=as_viewer).status_code == 403
    assert media.call("DELETE", f"/{digest}", headers=as_viewer).status_code == 403
    assert media.call("GET", f"/{digest}", headers={"Authorization": ""}).status_code == 401

    hub.wait_state("engine-1", "up")
    creds = json.loads((engine.data_dir / "credentials.json").read_text())
    as_engine = {"Authorization": "", "X-Agent-Id": creds["agent_id"],
                 "X-Agent-Secret": creds["secret"]}
    by_engine = media.call("GET", f"/{digest}", headers=as_engine)
    assert by_engine.status_code == 200 and by_engine.content == data
    assert media.call("GET", f"/{digest}/info", headers=as_engine).json()["bytes"] == len(data)
    forged = media.call("GET", f"/{digest}", headers={**as_engine, "X-Agent-Secret": "crs_no"})
    assert forged.status_code == 401 and "wrong secret" in forged.json()["detail"]
    unknown = "0" * 64
    assert media.call("GET", f"/{unknown}", headers=as_engine).status_code == 404
    assert media.call("GET", f"/{unknown}/info").status_code == 404
    assert media.call("GET", "/NOT-A-HASH").status_code == 422

    tasks = f"{hub.url}/api/v1/tasks"
    refused = hub.client.post(tasks, json=spec_naming(unknown))
    assert refused.status_code == 422, refused.text
    assert f"no media {unknown}" in refused.json()["detail"]
    assert f"PUT /api/v1/media/{unknown}" in refused.json()["detail"]
    reserved = hub.client.post(tasks, json=spec_naming(digest))
    assert reserved.status_code == 201, reserved.text
    task_id = reserved.json()["id"]
    listed = media.call("GET").json()
    assert [(e["sha256"], e["used_by"]) for e in listed] == [(digest, [task_id])]
    in_use = media.call("DELETE", f"/{digest}")
    assert in_use.status_code == 409 and task_id in in_use.json()["detail"]
    assert hub.client.post(f"{tasks}/{task_id}/release").status_code == 200
    assert media.call("DELETE", f"/{digest}").status_code == 204
    assert media.call("GET", f"/{digest}/info").status_code == 404
    assert media.stored() == []
    assert media.call("DELETE", f"/{digest}").status_code == 404

    asyncio.run(client_round_trip(hub, creds, tmp_path))


async def client_round_trip(hub: HubProcess, creds: dict[str, str], tmp_path: Path) -> None:
    """The client's media methods, as ``controlroom task reserve`` (operator) and an
    engine's cache (agent headers) call them."""
    source = tmp_path / "take.wav"
    source.write_bytes(wav(freq=330.0))
    digest = sha(source.read_bytes())
    async with HubClient(hub.url, hub.token) as operator, HubClient(hub.url, headers={
            "X-Agent-Id": creds["agent_id"], "X-Agent-Secret": creds["secret"]}) as agent:
        uploaded = await operator.upload_media(source)
        assert uploaded["uploaded"] and uploaded["sha256"] == digest
        assert uploaded["bytes"] == source.stat().st_size
        assert not (await operator.upload_media(source, digest))["uploaded"]
        assert [e["sha256"] for e in await operator.list_media()] == [digest]

        info = await agent.media_info(digest)
        assert info is not None and info["bytes"] == source.stat().st_size
        assert await agent.media_info("f" * 64) is None
        dest = tmp_path / "cache" / digest
        assert await agent.fetch_media(digest, dest) == source.stat().st_size
        assert dest.read_bytes() == source.read_bytes()
        assert sorted(p.name for p in dest.parent.iterdir()) == [digest]
        with pytest.raises(HubError) as missing:
            await agent.fetch_media("f" * 64, tmp_path / "cache" / "missing")
        assert missing.value.status == 404 and not (tmp_path / "cache" / "missing").exists()

        await operator.delete_media(digest)
        assert await operator.list_media() == []
