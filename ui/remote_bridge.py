"""The bridge to a hub in another process, usually on another machine, over its HTTP API.

``controlroom --hub URL --token T`` attaches the console to a hub started elsewhere (by
``controlroom --headless`` on the studio's server, say) instead of embedding one. Every
view holds a :class:`ui.bridge.HubBridge` and works unchanged, because
:class:`RemoteHubBridge` is one: it keeps the same signals and method names and does over
the network what the embedded bridge does in-process:

- snapshots: ``GET /api/v1/components`` and ``GET /api/v1/tasks`` once a second, and
  at once after a ``component.*`` or ``task.*`` event;
- events: the SSE stream ``GET /api/v1/events``, resumed with ``Last-Event-ID`` after
  any cut, so a hub that hangs, dies and comes back loses no event and repeats none;
- commands: tasks and enrollments over :class:`backend.node.client.HubClient`, with the
  operator token; the views' other commands already go through it;
- a task's stream: the WebSocket ``/api/v1/tasks/{id}/stream``, relayed into the same
  kind of queue the in-process hub hands out (binary audio frames, JSON meters text);
- render files: downloaded into the user cache before they are opened or saved.

When the hub stops answering (a snapshot request times out or is refused) the bridge
emits ``connection_changed(False, why)`` and keeps retrying with a capped backoff; when it
answers again, ``connection_changed(True, ...)``. Nothing here blocks the GUI thread.

:func:`probe` is the first call: it checks the address, the token and the API version in
one request (``GET /api/v1/hub``) and turns each way it can fail into a sentence that
says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import platformdirs
from PySide6.QtCore import QObject
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from backend import __version__
from backend.audio.spec import TaskSpec
from backend.hub import HealthSettings
from backend.hub.api import API_VERSION
from backend.node.client import HubClient, HubError, parse_sse
from ui.bridge import BACKLOG_EVENTS, SPAWN_ENROLLMENT_TTL_S, BridgeError, HubBridge

log = logging.getLogger(__name__)

#: How long the first check of a hub may take before it counts as unreachable.
CONNECT_TIMEOUT_S = 5.0
#: A snapshot request slower than this means the hub is not answering (hung or gone).
POLL_TIMEOUT_S = 3.0
#: The hub sends an SSE comment every 15 s (``backend.sse.KEEPALIVE_S``); longer silence
#: on the event stream means the connection is dead, so it is opened again.
EVENTS_IDLE_S = 20.0
#: Retries after a failure wait 0.1 s, then twice as long each time, up to this.
RETRY_MAX_S = 5.0
#: After a long cut, at most this many missed events are replayed; older ones are skipped
#: (and counted), as the embedded bridge does when it falls behind.
CATCH_UP_EVENTS = 1000
#: Audio frames and meters waiting for the meters panel; the oldest go first when full.
STREAM_QUEUE = 64
#: Environment variable that may carry the operator token (``controlroom --hub``).
TOKEN_ENV = "CONTROLROOM_TOKEN"


class RemoteHubError(Exception):
    """Attaching to a remote hub failed; ``message`` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class HubInfo:
    """What ``GET /api/v1/hub`` says about a hub (paths are on the hub's machine)."""

    url: str
    version: str
    role: str
    host: str
    data_dir: str
    admin_token: str
    health: HealthSettings
    started_at: float
    last_event_id: int

    @classmethod
    def from_json(cls, url: str, body: dict[str, Any]) -> HubInfo:
        health = body["health"]
        return cls(
            url=url, version=str(body["version"]), role=str(body["role"]),
            host=str(body["host"]), data_dir=str(body["data_dir"]),
            admin_token=str(body["admin_token"]),
            health=HealthSettings(float(health["interval_s"]), float(health["timeout_s"]),
                                  int(health["misses"])),
            started_at=float(body["started_at"]), last_event_id=int(body["last_event_id"]),
        )


# -- attaching ----------------------------------------------------------------------------

def normalize_url(url: str) -> str:
    """``http(s)://host:port`` from what an operator may type or paste.

    ``ws(s)://`` (an agent's ``--hub``) becomes ``http(s)://``, a bare ``host:port`` gets
    ``http://``, and a trailing ``/``, ``/api/v1`` or ``/docs`` is dropped.
    """
    text = url.strip()
    if not text:
        raise RemoteHubError("the hub's URL is empty; give it as http://HOST:PORT "
                             "(the hub writes it to DATA/hub.url on its machine)")
    if "://" not in text:
        text = "http://" + text
    text = re.sub(r"^ws(s?)://", r"http\1://", text)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteHubError(f"{url!r} is not a hub URL; give it as http://HOST:PORT "
                             "(the hub writes it to DATA/hub.url on its machine)")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise RemoteHubError(f"{url!r}: the port is not a number") from None
    path = re.sub(r"/(api/v1|docs|openapi\.json)?/*$", "", parts.path)
    return f"{parts.scheme}://{parts.netloc}{path}"


def read_token_file(path: Path) -> str:
    """The operator token from a file (a copy of the hub's ``admin.token``)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RemoteHubError(f"cannot read the token file {path}: {exc.strerror or exc}; "
                             "copy the hub's DATA/admin.token to this machine") from None
    if not token:
        raise RemoteHubError(f"the token file {path} is empty; it should hold the hub's "
                             "operator token (DATA/admin.token on the hub's machine)")
    return token


def unreachable(url: str, exc: BaseException) -> str:
    """The sentence for a hub that does not answer at all."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = f"no answer ({type(exc).__name__})"
    port = urlsplit(url).port or 8750
    return (f"cannot reach {url}: {reason}; is the hub running? Start it on its machine "
            f"with: controlroom --headless --host 0.0.0.0 --port {port}")


def wrong_token(url: str, detail: Any) -> str:
    """The sentence for a 401; the hub's own hint is replaced by a fuller one."""
    reason = str(detail).split(":", 1)[0]  # "wrong operator token" / "missing ..."
    return (f"the hub at {url} refused the operator token ({reason}). The token is in "
            "DATA/admin.token on the hub's machine (DATA is its --data-dir); pass it with "
            "--token-file PATH or --token TOKEN")


async def probe(url: str, token: str, *, within_s: float = CONNECT_TIMEOUT_S) -> HubInfo:
    """Check the address, the token and the API version; what the hub says about itself."""
    url = normalize_url(url)
    if not token:
        raise RemoteHubError(f"no operator token for {url}: pass --token-file PATH (a copy "
                             "of DATA/admin.token from the hub's machine) or --token TOKEN")
    async with httpx.AsyncClient(base_url=url, timeout=within_s) as http:
        try:
            response = await http.get("/api/v1/hub",
                                      headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 404:
                await _older_or_foreign(http, url)
        except httpx.TransportError as exc:
            raise RemoteHubError(unreachable(url, exc)) from None
    if response.status_code == 401:
        raise RemoteHubError(wrong_token(url, _detail(response)))
    if response.status_code != 200:
        raise RemoteHubError(f"the hub at {url} answered {response.status_code} to "
                             f"GET /api/v1/hub: {_detail(response)}")
    try:
        body = response.json()
        api = int(body["api"])
        if api != API_VERSION:
            raise RemoteHubError(
                f"the hub at {url} speaks API v{api} (Control Room {body.get('version')}); "
                f"this console speaks v{API_VERSION} (Control Room {__version__}). Run the "
                "same version of Control Room on both machines")
        info = HubInfo.from_json(url, body)
    except RemoteHubError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteHubError(f"{url} answered GET /api/v1/hub with something that is not a "
                             f"Control Room hub's description ({exc}); is the URL right?"
                             ) from None
    if info.version != __version__:
        log.warning("the hub at %s runs Control Room %s, this console %s", url, info.version,
                    __version__)
    return info


async def _older_or_foreign(http: httpx.AsyncClient, url: str) -> None:
    """No ``GET /api/v1/hub``: an older hub (say so) or not a hub at all (say that)."""
    health = await http.get("/api/v1/health")
    try:
        body = health.json()
        version = body["version"] if body.get("status") == "ok" else None
    except (ValueError, KeyError, AttributeError):
        version = None
    if version is None:
        raise RemoteHubError(f"{url} is not a Control Room hub (no /api/v1/health); check "
                             "the address and port (the hub writes its URL to DATA/hub.url)")
    raise RemoteHubError(f"the hub at {url} runs Control Room {version}, too old for a "
                         f"remote console (no GET /api/v1/hub); this console is {__version__}. "
                         "Update the hub's machine to the same version")


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return body.get("detail", body) if isinstance(body, dict) else body


def default_cache_dir() -> Path:
    """Where fetched renders are kept: the user cache, ``controlroom/renders``."""
    return Path(platformdirs.user_cache_dir("controlroom", appauthor=False)) / "renders"


def hub_slug(url: str) -> str:
    """``host-port``: a file-name-safe name for one hub, for per-hub caches and agents."""
    parts = urlsplit(url)
    slug = f"{parts.hostname or 'hub'}-{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", slug)


# -- the bridge ---------------------------------------------------------------------------

class RemoteHubBridge(HubBridge):
    """A :class:`HubBridge` over a hub's HTTP API; build it with :meth:`attach`."""

    def __init__(
        self,
        info: HubInfo,
        token: str,
        *,
        cache_dir: Path | None = None,
        refresh_s: float = 1.0,
        backlog: int = BACKLOG_EVENTS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(None, info.url, refresh_s=refresh_s, backlog=backlog, parent=parent)
        self.info = info
        self._token = token
        self._cache = (cache_dir or default_cache_dir()) / hub_slug(info.url)
        self._components: list[dict[str, Any]] = []
        self._tasks: list[dict[str, Any]] = []
        self._relays: dict[int, asyncio.Task[None]] = {}
        self._refresh_now = asyncio.Event()
        self._reconnect_now = asyncio.Event()
        #: Whether the hub answered the last request; starts True (it just did).
        self.connected = True
        #: The id of the newest event emitted; the stream resumes after it.
        self.last_event_id = 0

    @classmethod
    async def attach(cls, url: str, token: str, **kwargs: Any) -> RemoteHubBridge:
        """Probe the hub (raises :class:`RemoteHubError`), then a bridge to it."""
        return cls(await probe(url, token), token, **kwargs)

    # -- what the views may know about the hub ----------------------------------------

    @property
    def is_remote(self) -> bool:
        return True

    @property
    def role(self) -> str:
        return self.info.role

    @property
    def data_dir(self) -> Path:
        """The hub's data dir *on its machine* (shown, never opened here)."""
        return Path(self.info.data_dir)

    @property
    def admin_token_path(self) -> Path:
        return Path(self.info.admin_token)

    @property
    def health(self) -> HealthSettings:
        return self.info.health

    @property
    def render_cache(self) -> Path:
        """Where this hub's renders are downloaded to."""
        return self._cache

    def snapshot(self) -> list[dict[str, Any]]:
        """The components as last fetched (deep-copied)."""
        return copy.deepcopy(self._components)

    def tasks_snapshot(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._tasks)

    @property
    def _nodes_client(self) -> HubClient:
        if self._client is None:
            self._client = HubClient(self._base_url, self._token)
        return self._client

    # -- commands ---------------------------------------------------------------------

    async def create_enrollment(self, kind: str,
                                ttl_s: float = SPAWN_ENROLLMENT_TTL_S) -> str:
        """A one-time enrollment token from the remote hub, for an agent spawned here."""
        response = await self._call(self._nodes_client._http.post(
            "/api/v1/enrollments", json={"kind": kind, "ttl_s": ttl_s}))
        return str(self._checked(response, f"enrollment for a {kind}")["token"])

    async def reserve_task(self, spec: TaskSpec, engine: str | None = None) -> dict[str, Any]:
        task = await self._call(self._nodes_client.reserve(spec.model_dump(mode="json"),
                                                           engine))
        self._refresh_now.set()  # the new task shows at once, as with the embedded hub
        return dict(task)

    async def play_task(self, task_id: str) -> None:
        await self._call(self._nodes_client.play(task_id))

    async def stop_task(self, task_id: str) -> None:
        await self._call(self._nodes_client.stop(task_id))

    async def render_task(self, task_id: str, fmt: str = "wav24") -> str:
        return str(await self._call(self._nodes_client.render(task_id, fmt)))

    async def cancel_render(self, task_id: str, render_id: str) -> None:
        await self._call(self._nodes_client.cancel_render(task_id, render_id))

    async def release_task(self, task_id: str) -> None:
        await self._call(self._nodes_client.release(task_id))

    async def set_params(self, task_id: str, iid: str, params: dict[str, Any]) -> None:
        response = await self._call(self._nodes_client._http.patch(
            f"/api/v1/tasks/{task_id}/instances/{iid}", json=params))
        self._checked(response, f"parameters of {iid}")

    async def fetch_render(self, task_id: str, render_id: str) -> Path:
        """Download a finished render into the cache once; later calls reuse the file.

        A finished render never changes, so a complete file in the cache is the render.
        The download goes to a ``.part`` file that is renamed when complete and of the
        announced size, so a cut leaves nothing that looks finished.
        """
        target = self._cache / task_id / f"{render_id}.wav"
        if await asyncio.to_thread(target.is_file):
            return target
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        url = f"/api/v1/tasks/{task_id}/renders/{render_id}/file"
        http = self._nodes_client._http
        try:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise BridgeError(f"render {render_id}: {_detail(response)}",
                                      response.status_code)
                expected = int(response.headers.get("content-length", -1))
                written = await self._write(response, partial)
            if expected >= 0 and written != expected:
                raise BridgeError(f"render {render_id}: the download stopped at {written} of "
                                  f"{expected} bytes; try again", 502)
            await asyncio.to_thread(os.replace, partial, target)
        except httpx.TransportError as exc:
            raise BridgeError(unreachable(self.base_url, exc), 503) from None
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        log.info("fetched render %s of %s to %s", render_id, task_id, target)
        return target

    @staticmethod
    async def _write(response: httpx.Response, path: Path) -> int:
        """Stream the body to ``path``; the file is written in a worker thread."""
        out = await asyncio.to_thread(path.open, "wb")
        written = 0
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                pending.append(chunk)
                size += len(chunk)
                if size >= 1 << 20:  # write in ~1 MiB pieces, off the GUI thread
                    await asyncio.to_thread(out.write, b"".join(pending))
                    written += size
                    pending, size = [], 0
            if pending:
                await asyncio.to_thread(out.write, b"".join(pending))
                written += size
        finally:
            await asyncio.to_thread(out.close)
        return written

    def subscribe_stream(self, task_id: str) -> asyncio.Queue[bytes | str | None]:
        """The task's frames from the hub's WebSocket, in a queue like the in-process one.

        ``None`` ends the queue: the stream closed (the task ended, is unknown, or the hub
        went away). The meters panel follows it again on the next play.
        """
        queue: asyncio.Queue[bytes | str | None] = asyncio.Queue(STREAM_QUEUE)
        relay = asyncio.get_running_loop().create_task(
            self._relay(task_id, queue), name=f"stream-{task_id}")
        self._relays[id(queue)] = relay
        return queue

    def unsubscribe_stream(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        relay = self._relays.pop(id(queue), None)
        if relay is not None and not relay.done():
            relay.cancel()

    async def _relay(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        url = self._nodes_client.stream_url(task_id)
        try:
            async with ws_connect(url, open_timeout=CONNECT_TIMEOUT_S, max_size=None,
                                  additional_headers={"Authorization": f"Bearer {self._token}"},
                                  ) as ws:
                async for message in ws:
                    _offer(queue, message)
        except ConnectionClosed as exc:
            log.info("stream of %s closed: %s", task_id, exc)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.warning("stream of %s: %s", task_id, exc)
        finally:
            _offer(queue, None)

    async def _call(self, call: Any) -> Any:
        """Await a request; the hub's refusal or silence becomes a :class:`BridgeError`."""
        try:
            return await call
        except HubError as exc:
            detail = exc.detail
            raise BridgeError(detail if isinstance(detail, str) else str(exc),
                              exc.status_code) from None
        except httpx.TransportError as exc:
            raise BridgeError(unreachable(self.base_url, exc), 503) from None

    @staticmethod
    def _checked(response: httpx.Response, what: str) -> Any:
        if response.status_code >= 400:
            detail = _detail(response)
            raise BridgeError(detail if isinstance(detail, str) else f"{what}: {detail}",
                              response.status_code)
        return response.json() if response.content else None

    async def aclose(self) -> None:
        relays = [r for r in self._relays.values() if not r.done()]
        for relay in relays:
            relay.cancel()
        if relays:
            await asyncio.wait(relays)
        self._relays.clear()
        await super().aclose()

    # -- live updates -----------------------------------------------------------------

    async def _follow(self) -> None:
        """Snapshots and events side by side until stopped; either failing stops both."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._poll(), name="remote-hub-snapshots")
            group.create_task(self._follow_events(), name="remote-hub-events")

    async def _poll(self) -> None:
        """A snapshot each ``refresh_s`` (or at once when asked); backoff while away."""
        delay = self._refresh_s
        while True:
            self._refresh_now.clear()
            try:
                await self._refresh()
            except (httpx.TransportError, BridgeError, ValueError) as exc:
                if isinstance(exc, BridgeError):
                    why = f"the hub at {self.base_url} answered: {exc.message}"
                elif isinstance(exc, ValueError):
                    why = f"{self.base_url} answered with something that is not JSON"
                else:
                    why = unreachable(self.base_url, exc)
                self._set_connected(False, why)
                delay = min(max(delay * 2, 0.5), RETRY_MAX_S)
            else:
                self._set_connected(True, f"the hub at {self.base_url} answers again")
                delay = self._refresh_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._refresh_now.wait()

    async def _refresh(self) -> None:
        http = self._nodes_client._http
        components = await http.get("/api/v1/components", timeout=POLL_TIMEOUT_S)
        tasks = await http.get("/api/v1/tasks", timeout=POLL_TIMEOUT_S)
        self._components = list(self._checked(components, "components"))
        self._tasks = list(self._checked(tasks, "tasks"))
        self.components_changed.emit(self.snapshot())
        self.tasks_changed.emit(self.tasks_snapshot())

    def _set_connected(self, connected: bool, message: str) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if connected:
            log.info("%s", message)
            self._reconnect_now.set()  # the event stream need not wait out its backoff
        else:
            log.warning("hub not answering: %s", message)
        self.connection_changed.emit(connected, message)

    async def _follow_events(self) -> None:
        """The SSE stream from the recent history on, resumed after every cut."""
        http = self._nodes_client._http
        last = max(0, self.info.last_event_id - self._backlog)
        self.last_event_id = last
        delay = 0.1
        while True:
            try:
                async with http.stream(
                    "GET", "/api/v1/events", headers={"Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(POLL_TIMEOUT_S, read=EVENTS_IDLE_S),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        log.warning("events: %s %s", response.status_code, _detail(response))
                    else:
                        async for event_id, _, data in parse_sse(response.aiter_lines()):
                            delay = 0.1
                            if event_id <= last:
                                continue  # never twice, whatever the server resends
                            last = self.last_event_id = event_id
                            self.event_received.emit(data)
                            kind = str(data.get("type", ""))
                            if kind.startswith(("component.", "task.")):
                                self._refresh_now.set()
            except httpx.TransportError as exc:  # timeouts included: a silent hub
                log.info("event stream cut after %s: %s", last, type(exc).__name__)
            self._reconnect_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._reconnect_now.wait()
            delay = min(delay * 2, RETRY_MAX_S)
            last = self.last_event_id = await self._resume_point(last)

    async def _resume_point(self, last: int) -> int:
        """Where to resume: after ``last``, unless the hub's log was replaced or ran far on."""
        try:
            response = await self._nodes_client._http.get("/api/v1/hub",
                                                          timeout=POLL_TIMEOUT_S)
        except httpx.TransportError:
            return last  # the next attempt will fail or succeed on its own
        if response.status_code == 401:
            self.failed.emit(wrong_token(self.base_url, _detail(response)))
            return last
        if response.status_code != 200:
            return last
        newest = int(response.json().get("last_event_id", last))
        if newest < last:  # a new data dir: the ids started again
            log.warning("the hub's event log restarted at %s (we had %s)", newest, last)
            return max(0, newest - self._backlog)
        if newest - last > CATCH_UP_EVENTS:
            self.events_skipped.emit(newest - CATCH_UP_EVENTS - last)
            return newest - CATCH_UP_EVENTS
        return last


def _offer(queue: asyncio.Queue[bytes | str | None], item: bytes | str | None) -> None:
    """Put without waiting; a full queue loses its oldest item (skip, never block)."""
    with contextlib.suppress(asyncio.QueueFull):
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)
