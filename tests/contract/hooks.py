"""schemathesis hooks (``SCHEMATHESIS_HOOKS=hooks``): renew, just before a call, the state
that the call itself uses up, so every case of these operations meets it fresh.

- ``POST .../stop`` stops a playing task: the task is played again first.
- ``POST .../renders/{render_id}/cancel`` cancels a running render: a render is started
  first (a ten-minute program, still running when the cancel follows a moment later).
- ``GET``/``POST .../lock/{lid}/candidate`` need an open lock: one good candidate releases
  it and ends the run, so a new run of ``hello`` is started when the last one is over, and
  a candidate object gets the ``name`` the lock asks for (what an operator would type).

Only cases whose path parameters are the ones ``seeds.pins`` fixed are touched; the hub,
its token and the seeded ids come from the environment (``seeds.Seeds.environment``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import schemathesis

RENEWED = "renewed-by-hooks"
_client: httpx.Client | None = None
_state: dict[str, str] = {}


def _http() -> httpx.Client:
    global _client
    if _client is None:
        url = os.environ["CONTROLROOM_FUZZ_HUB"]
        verify: Any = os.environ["CONTROLROOM_FUZZ_CA"] if url.startswith("https:") else True
        _client = httpx.Client(base_url=url, verify=verify, timeout=30, headers={
            "Authorization": f"Bearer {os.environ['CONTROLROOM_FUZZ_TOKEN']}"})
    return _client


def _open_lock() -> tuple[str, str]:
    """A run of ``hello`` waiting on its input lock: the last one, or a new one."""
    fid = _state.get("fid") or os.environ["CONTROLROOM_FUZZ_LOCKED_RUN"]
    for _ in range(2):
        locks = _http().get(f"/node/v1/runs/{fid}").json().get("locks") or []
        if locks:
            _state["fid"] = fid
            return fid, str(locks[0]["lid"])
        fid = _http().post("/node/v1/runs", json={"flow": "hello"}).json()["fid"]
        for _ in range(600):  # the worker opens the lock once it has started (<= 30 s)
            locks = _http().get(f"/node/v1/runs/{fid}").json().get("locks") or []
            if locks:
                _state["fid"] = fid
                return fid, str(locks[0]["lid"])
            time.sleep(0.05)
    raise RuntimeError("no run of hello opened its input lock")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    path = case.path_parameters or {}
    name = f"{case.method.upper()} {case.operation.path}"
    if name == "POST /api/v1/tasks/{task_id}/stop" and path.get("task_id") == \
            os.environ["CONTROLROOM_FUZZ_PLAYING"]:
        _http().post(f"/api/v1/tasks/{path['task_id']}/play")
    elif name == "POST /api/v1/tasks/{task_id}/renders/{render_id}/cancel" and \
            path.get("render_id") == RENEWED:
        task = os.environ["CONTROLROOM_FUZZ_RENDERING"]
        started = _http().post(f"/api/v1/tasks/{task}/render")
        if started.status_code == 202:
            _state["render"] = started.json()["render_id"]
        case.path_parameters = {**path, "render_id": _state.get("render", RENEWED)}
    elif name.endswith("/lock/{lid}/candidate") and path.get("lid") == RENEWED:
        fid, lid = _open_lock()
        case.path_parameters = {**path, "fid": fid, "lid": lid}
        if case.method.upper() == "POST" and isinstance(case.body, dict):
            case.body = {**case.body, "name": "Ada"}
