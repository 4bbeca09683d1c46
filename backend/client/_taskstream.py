"""A task's live stream: the WebSocket that carries its audio blocks and meters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from backend.client._errors import ClientError, HubError, HubUnreachable
from backend.client._http import tls_for
from backend.tls import Trust

#: How long opening the stream may take.
OPEN_TIMEOUT_S = 5.0


class TaskStream:
    """``async with client.task_stream(tid) as stream: async for frame in stream``.

    Frames are ``bytes`` (an audio block, :mod:`backend.protocol.frames`) or ``str`` (a
    meters message, JSON). Iteration ends when the hub closes the stream (the task ended,
    was released, or the hub went away); opening it raises :class:`HubUnreachable` or
    :class:`HubError` (an unknown task, a refused token).
    """

    def __init__(self, url: str, token: str, trust: Trust | None = None) -> None:
        self.url = url
        self._token = token
        self._trust = trust
        self._ws: ClientConnection | None = None
        #: Why the stream ended, once it has ("" while open).
        self.closed_because = ""

    async def __aenter__(self) -> TaskStream:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            tls = tls_for(self.url, self._trust)
            self._ws = await connect(self.url, open_timeout=OPEN_TIMEOUT_S, max_size=None,
                                     additional_headers=headers, ssl=tls or None)
        except InvalidStatus as exc:
            raise HubError(exc.response.status_code,
                           exc.response.body.decode(errors="replace")[:500] if
                           exc.response.body else "refused", "task stream") from None
        except (OSError, TimeoutError) as exc:
            raise HubUnreachable(self.url, str(exc) or type(exc).__name__) from None
        except (InvalidHandshake, InvalidURI) as exc:
            raise ClientError(f"the task stream at {self.url} could not open: {exc}",
                              502) from None
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def recv(self) -> bytes | str | None:
        """The next frame, or None once the stream has closed; safe to cancel (a timeout)."""
        assert self._ws is not None, "use TaskStream in an async with block"
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            self.closed_because = str(exc)
            return None

    def __aiter__(self) -> AsyncIterator[bytes | str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[bytes | str]:
        assert self._ws is not None, "use TaskStream in an async with block"
        try:
            async for message in self._ws:
                yield message
        except ConnectionClosed as exc:
            self.closed_because = str(exc)
        else:
            self.closed_because = "closed by the hub"
