"""No reading without a token, least privilege by kind, named tokens revoked at once.

The route walk reads the routes from the app itself, so a route added later without a
token check fails here: every HTTP route and WebSocket is called without a token, and
every one that changes state with a viewer token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_routes import OWN_CREDENTIALS, concrete, served, ws_refused
from processes import HubProcess, wait_until
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

NO_TOKEN = {"Authorization": ""}


def viewer(hub: HubProcess, name: str = "wall") -> dict[str, str]:
    r = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": name, "kind": "viewer"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_every_route_needs_a_token_and_a_viewer_changes_nothing(
        start_hub: Any, tmp_path: Path) -> None:
    hub = start_hub("--auth-failures", "10000")  # the walk fails on purpose, many times
    routes = served(tmp_path / "walk")
    assert len(routes) > 40
    as_viewer = viewer(hub)
    ws_base = hub.url.replace("http://", "ws://")
    for method, path in sorted(routes - OWN_CREDENTIALS):
        url = concrete(path)
        if method == "WS":
            assert ws_refused(ws_base + url, {}), f"{path} opens without a token"
            continue
        body: dict[str, Any] = {}
        anonymous = hub.client.request(method, hub.url + url, headers=NO_TOKEN,
                                       **({"json": body} if method != "GET" else {}))
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        if method != "GET":
            refused = hub.client.request(method, hub.url + url, headers=as_viewer, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
            assert "viewer token (wall) may not" in refused.json()["detail"]
    assert hub.client.get(f"{hub.url}/api/v1/health", headers=NO_TOKEN).status_code == 200


def test_a_viewer_reads_and_streams_but_is_refused_changes_with_the_reason(
        hub: HubProcess) -> None:
    as_viewer = viewer(hub)
    assert hub.client.get(f"{hub.url}/api/v1/components", headers=as_viewer).status_code == 200
    about = hub.client.get(f"{hub.url}/api/v1/hub", headers=as_viewer).json()
    assert about["access"] == "viewer"
    assert hub.client.get(f"{hub.url}/api/v1/hub").json()["access"] == "operator"
    refused = hub.client.post(f"{hub.url}/api/v1/enrollments", json={"kind": "engine"},
                              headers=as_viewer)
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("a viewer token (wall) may not change state here; "
                                        "use an operator token")


def test_named_tokens_are_shown_once_listed_without_secrets_and_revoked_at_once(
        hub: HubProcess) -> None:
    created = hub.client.post(f"{hub.url}/api/v1/tokens",
                              json={"name": "script", "kind": "operator"})
    assert created.status_code == 201
    secret = created.json()["token"]
    as_script = {"Authorization": f"Bearer {secret}"}
    assert hub.client.post(f"{hub.url}/api/v1/enrollments", json={"kind": "engine"},
                           headers=as_script).status_code == 201
    listed = hub.client.get(f"{hub.url}/api/v1/tokens")
    assert [t["name"] for t in listed.json()] == ["script"]
    assert listed.json()[0]["kind"] == "operator" and listed.json()[0]["last_used_at"]
    assert secret not in listed.text and secret[4:20] not in listed.text
    assert secret not in (hub.data_dir / "hub.sqlite3").read_bytes().decode(errors="replace")

    again = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": "script",
                                                               "kind": "viewer"})
    assert again.status_code == 409 and "revoke it first" in again.json()["detail"]
    bad = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": "admin", "kind": "viewer"})
    assert bad.status_code == 422 and "admin.token" in bad.json()["detail"]
    bad_kind = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": "n", "kind": "root"})
    assert bad_kind.status_code == 422

    assert hub.client.delete(f"{hub.url}/api/v1/tokens/script").status_code == 200
    gone = hub.client.get(f"{hub.url}/api/v1/components", headers=as_script)
    assert gone.status_code == 401 and "unknown or revoked" in gone.json()["detail"]
    assert hub.client.delete(f"{hub.url}/api/v1/tokens/script").status_code == 404
    kinds = [e["event"] for e in hub.events()]
    assert "token.created" in kinds and "token.revoked" in kinds


def test_revoking_a_token_closes_its_open_event_stream(hub: HubProcess) -> None:
    as_viewer = viewer(hub, "display")
    ended = threading.Event()

    def follow() -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client, client.stream(
                "GET", f"{hub.url}/api/v1/events", headers=as_viewer) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    time.sleep(0.5)
    assert not ended.is_set()  # an idle stream stays open...
    started = time.monotonic()
    assert hub.client.delete(f"{hub.url}/api/v1/tokens/display").status_code == 200
    wait_until(ended.is_set, 5, "the revoked token's stream to close")
    assert time.monotonic() - started < 2  # ...and closes at once when revoked


@pytest.mark.parametrize("path", ["/api/v1/components", "/api/v1/events", "/api/v1/tasks"])
def test_reads_without_a_token_say_how_to_get_one(hub: HubProcess, path: str) -> None:
    r = hub.client.get(hub.url + path, headers=NO_TOKEN)
    assert r.status_code == 401 and "admin.token" in r.json()["detail"]


def test_failed_authentication_is_throttled_but_a_valid_token_never_is(
    start_hub: Any,
) -> None:
    hub = start_hub("--auth-failures", "3", "--auth-window", "30")
    url = f"{hub.url}/api/v1/components"
    guesses = [hub.client.get(url, headers={"Authorization": f"Bearer crt_guess{i}"})
               for i in range(3)]
    assert [r.status_code for r in guesses] == [401, 401, 401]
    refused = hub.client.get(url, headers={"Authorization": "Bearer crt_guess9"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "retry in" in refused.json()["detail"]
    # The operator on the same address is not locked out by someone else's guesses.
    assert hub.client.get(url).status_code == 200
    # A handshake without a valid token is refused meanwhile (and not counted twice).
    ws_url = hub.url.replace("http", "ws", 1) + "/api/v1/tasks/t_x/stream"
    with pytest.raises(InvalidStatus):
        asyncio.run(_open_ws(ws_url))
    events = [e for e in hub.events() if e["event"].startswith("auth.")]
    failed = [e for e in events if e["event"] == "auth.failed"]
    assert len(failed) == 3 and {e["data"]["subject"] for e in failed} == {"127.0.0.1"}
    assert "crt_guess" not in str(events)  # the guessed credential is not repeated
    assert [e["event"] for e in events].count("auth.throttled") == 1


async def _open_ws(url: str) -> None:
    async with connect(url, additional_headers={"Authorization": "Bearer crt_nope"}) as ws:
        await ws.recv()
