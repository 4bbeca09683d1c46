"""schemathesis hooks (``SCHEMATHESIS_HOOKS=hooks``): renew, just before a call, the state
that the call itself uses up, so every case of these operations meets it fresh.

- ``POST .../stop`` stops a playing task: the task is played again first.
- ``POST .../renders/{render_id}/cancel`` cancels a running render: a render is started
  first (a ten-minute program, still running when the cancel follows a moment later).
- ``POST /node/v1/runs/{fid}/cancel`` ends a run: a new run of ``hello`` (which waits on
  its lock) is started for it, a few times at most (each is a worker process).
- ``POST .../render`` needs a task that may render: when the fuzz released (or failed) the
  seeded one, a new task of the same spec is reserved and rendered instead.
- ``DELETE /api/v1/media/{sha256}`` deletes the media ``DELETED_MEDIA``: it is uploaded
  again first when the last case deleted it. ``PUT /api/v1/media/{sha256}`` of
  ``KEPT_MEDIA``: a valid case's body becomes those bytes (what hashes to the path).
- ``GET``/``POST .../lock/{lid}/candidate`` need an open lock: one good candidate releases
  it and ends the run, so a new run of ``hello`` is started when the last one is over, and
  a candidate object gets the ``name`` the lock asks for (what an operator would type).

Only cases whose path parameters are the ones ``seeds.pins`` fixed are touched; the hub,
its token and the seeded ids come from the environment (``seeds.Seeds.environment``).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import httpx
import schemathesis

RENEWED = "renewed-by-hooks"
#: The media the fuzz's ``DELETE /api/v1/media/{sha256}`` deletes (seeded, then renewed).
DELETED_MEDIA = b"contract fuzz: media to delete"
#: The media that stays: fetched, asked about, and uploaded again (a valid case's body is
#: made these bytes, as no schema can say a body must hash to its path).
KEPT_MEDIA = b"contract fuzz: media that stays"
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


def media_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


#: How many runs the fuzz's cancels get (after that they meet an ended run: 409).
CANCELLED_RUNS = 3


def _cancellable() -> str:
    """A new run of ``hello`` for a cancel, or the last one once enough were made."""
    made = int(_state.get("cancellable_made", "0"))
    if made < CANCELLED_RUNS:
        started = _http().post("/node/v1/runs", json={"flow": "hello"})
        if started.status_code == 201:
            _state["cancellable"] = started.json()["fid"]
            _state["cancellable_made"] = str(made + 1)
    return _state.get("cancellable") or os.environ["CONTROLROOM_FUZZ_LOCKED_RUN"]


def _renderable() -> str:
    """The seeded task to render, or, once the fuzz has released it (a release may draw any
    task id it has seen), a ready task of the same spec reserved in its place."""
    task = _state.get("rendered") or os.environ["CONTROLROOM_FUZZ_RENDERED"]
    view = _http().get(f"/api/v1/tasks/{task}").json()
    if view.get("state") not in ("released", "failed"):
        return task
    made = _http().post("/api/v1/tasks", json=view["spec"])
    if made.status_code != 201:
        return task
    task = made.json()["id"]
    for _ in range(600):  # the engine accepts within its push timeout (<= 30 s)
        if _http().get(f"/api/v1/tasks/{task}").json().get("state") == "ready":
            break
        time.sleep(0.05)
    _state["rendered"] = task
    return task


def _valid(case: Any) -> bool:
    """Whether schemathesis generated ``case`` as a valid request (positive mode)."""
    meta = getattr(case, "meta", None)
    return meta is not None and bool(meta.generation.mode.is_positive)


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
    elif name == "POST /node/v1/runs/{fid}/cancel" and path.get("fid") == RENEWED:
        case.path_parameters = {**path, "fid": _cancellable()}
    elif name == "POST /api/v1/tasks/{task_id}/render" and \
            path.get("task_id") == os.environ["CONTROLROOM_FUZZ_RENDERED"]:
        case.path_parameters = {**path, "task_id": _renderable()}
    elif name == "DELETE /api/v1/media/{sha256}" and \
            path.get("sha256") == media_sha256(DELETED_MEDIA):
        _http().put(f"/api/v1/media/{path['sha256']}", content=DELETED_MEDIA)  # 200 if there
    elif name == "PUT /api/v1/media/{sha256}" and \
            path.get("sha256") == media_sha256(KEPT_MEDIA) and _valid(case):
        case.body = KEPT_MEDIA
    elif name.endswith("/lock/{lid}/candidate") and path.get("lid") == RENEWED:
        fid, lid = _open_lock()
        case.path_parameters = {**path, "fid": fid, "lid": lid}
        if case.method.upper() == "POST" and isinstance(case.body, dict):
            case.body = {**case.body, "name": "Ada"}
