"""The agent's end of the channel: register, answer health checks, apply configs, reconnect.

Every agent kind (engine, driver, runner, node, and a hub joining a cloud) runs one
:class:`AgentSession`. Health checks are answered right in the receive loop, on the event
loop, so an agent busy in worker threads or processes still answers on time.

On a lost connection it waits a :class:`~backend.agents.backoff.Backoff` delay and
registers again; the hub replaces any older connection of the same name, so the component
appears once. When the hub refuses the credentials (close codes in
:data:`backend.protocol.closecodes.FATAL`) retrying cannot help: :meth:`AgentSession.run`
raises :class:`~backend.errors.AgentFatal` with the hub's reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from backend import __version__
from backend.agents import credentials
from backend.agents.backoff import Backoff
from backend.agents.urls import agent_channel_url
from backend.client._http import tls_for
from backend.errors import AgentFatal, ProtocolViolation
from backend.protocol import (
    MAX_FRAME_BYTES,
    ConfigApplied,
    ConfigPush,
    Hello,
    Message,
    Ping,
    Pong,
    TlsNext,
    Welcome,
    closecodes,
    decode_hub_message,
    encode,
)
from backend.tls import PinMismatch, Trust, discover, fingerprint

log = logging.getLogger(__name__)

WELCOME_TIMEOUT_S = 10.0

ConfigHandler = Callable[[dict[str, Any]], Awaitable[None] | None]
ConnectedHandler = Callable[["AgentSession"], Awaitable[None] | None]
MessageHandler = Callable[[Message], Awaitable[None]]
BinaryHandler = Callable[[bytes], Awaitable[None]]


@dataclass
class SessionSettings:
    hub_url: str
    name: str
    kind: str
    data_dir: Path
    token: str | None = None
    #: The hub certificate's fingerprint from the enrollment (``--pin``), first start only.
    pin: str | None = None
    static_config: dict[str, Any] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)


class AgentSession:
    def __init__(
        self,
        settings: SessionSettings,
        on_config: ConfigHandler | None = None,
        on_connected: ConnectedHandler | None = None,
    ) -> None:
        self.settings = settings
        self.url = agent_channel_url(settings.hub_url)
        self.config: dict[str, Any] = {}
        self.agent_id: str | None = None
        self.registrations = 0
        self.connected = asyncio.Event()
        self._on_config = on_config
        self._on_connected = on_connected
        #: Handlers for the message types a role adds (audio tasks, ...). They run on the
        #: receive loop: quick ones answer inline, long work goes to a task or a thread, so
        #: health checks behind them are still answered on time.
        self.handlers: dict[str, MessageHandler] = {}
        self.on_binary: BinaryHandler | None = None
        #: Called after each connection ends (e.g. the engine stops plays nobody can hear).
        self.on_disconnected: Callable[[], Awaitable[None]] | None = None
        #: Extra config appliers a role adds (run after ``on_config``).
        self.on_config_hooks: list[ConfigHandler] = []
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self._token = settings.token
        #: What the hub's certificate is trusted by: the pinned certificates (saved with
        #: the credentials), or the system's CAs. Agents' HTTP calls use it too.
        saved = credentials.load(settings.data_dir)
        self.trust = Trust(saved.anchors) if saved is not None else Trust()

    # -- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Stay registered until :meth:`stop`; raise AgentFatal if the hub refuses us."""
        backoff = self.settings.backoff
        while not self._stopping.is_set():
            try:
                await self._session()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                reason = exc.rcvd.reason if exc.rcvd else "connection lost"
                if code in closecodes.FATAL and not self._stopping.is_set():
                    if code != closecodes.REPLACED and self._retry_with_token(reason):
                        continue
                    raise AgentFatal(f"the hub refused {self.settings.name}: {reason}") from None
                if not self._stopping.is_set():
                    log.warning("connection to the hub closed (%s %s)", code, reason or "")
            except PinMismatch as exc:
                if exc.expected:  # a pinned hub showed another face: report it later
                    self._remember_mismatch(exc)
                raise AgentFatal(f"{exc} (This agent's data dir: {self.settings.data_dir}.)"
                                 ) from None
            except ssl.SSLCertVerificationError as exc:
                raise AgentFatal(
                    f"the hub at {self.settings.hub_url} presents a certificate this system "
                    f"does not trust ({exc.verify_message}): start the agent with the --pin "
                    "its enrollment gave (POST /api/v1/enrollments returns it as `pin`)"
                ) from None
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                log.warning("hub %s unreachable: %s", self.settings.hub_url, exc or type(exc))
            except InvalidURI as exc:
                raise AgentFatal(f"bad hub URL: {exc}") from None
            except ProtocolViolation as exc:
                log.error("the hub sent something unexpected: %s", exc.reason)
            finally:
                self._ws = None
                was_connected = self.connected.is_set()
                self.connected.clear()
                if was_connected and self.on_disconnected is not None:
                    await self.on_disconnected()
            if self._stopping.is_set():
                break
            delay = backoff.next_delay()
            log.info("reconnecting in %.2f s (attempt %d)", delay, backoff.attempt)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Say goodbye to the hub (close code 1000) and end :meth:`run`."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            await ws.close(closecodes.NORMAL, "agent shutting down")

    async def send(self, message: Message) -> bool:
        """Send a message if connected; returns whether it went out."""
        return await self._send_frame(encode(message))

    async def send_bytes(self, data: bytes) -> bool:
        """Send a binary frame (audio) if connected; returns whether it went out."""
        return await self._send_frame(data)

    async def _send_frame(self, frame: str | bytes) -> bool:
        ws = self._ws
        if ws is None or not self.connected.is_set():
            return False
        try:
            await ws.send(frame)
        except ConnectionClosed:
            return False
        return True

    # -- one connection ---------------------------------------------------------------

    def _hello(self, saved: credentials.Credentials | None) -> Hello:
        common: dict[str, Any] = {
            "kind": self.settings.kind, "name": self.settings.name,
            "config": self.settings.static_config, "version": __version__,
        }
        common["pin_mismatches"] = self._mismatches()
        if saved is not None and saved.name == self.settings.name:
            return Hello(**common, agent_id=saved.agent_id, secret=saved.secret)
        if self._token:
            return Hello(**common, enroll_token=self._token)
        raise AgentFatal(
            f"no credentials in {self.settings.data_dir} and no enrollment token: create one "
            "with POST /api/v1/enrollments and pass it with --token"
        )

    def _retry_with_token(self, reason: str) -> bool:
        """Saved credentials refused but a token was given: enroll afresh, once."""
        path = self.settings.data_dir / credentials.FILENAME
        if self._token and path.exists():
            log.warning("saved credentials refused (%s); enrolling with the token", reason)
            path.rename(path.with_suffix(".refused"))
            return True
        return False

    # -- whom to trust --------------------------------------------------------------

    def _pins(self, saved: credentials.Credentials | None) -> tuple[str, ...]:
        pins = [saved.pin] if saved is not None and saved.pin else []
        if self.settings.pin:
            pins.append(self.settings.pin)
        return tuple(pins)

    async def _trust(self, saved: credentials.Credentials | None) -> Trust:
        """The saved anchors, else the certificate the hub presents if it matches a pin
        (discovered before anything is sent), else the system's CAs."""
        if not self.url.startswith("wss:"):
            return Trust()
        if saved is not None and saved.name == self.settings.name and saved.anchors:
            return Trust(saved.anchors)
        return await discover(self.url, self._pins(saved))

    async def _connect(self, trust: Trust) -> ClientConnection:
        return await connect(
            self.url, max_size=4 * MAX_FRAME_BYTES, open_timeout=10, close_timeout=2,
            ping_interval=20, ping_timeout=20, compression=None,
            ssl=tls_for(self.url, trust) or None,
        )

    async def _open(self, saved: credentials.Credentials | None) -> ClientConnection:
        """Connect, trusting what :meth:`_trust` says. A pinned hub presenting another
        certificate is checked again against every pin, so a certificate it announced
        (saved as an anchor) or one that chains to a system CA is still accepted; anything
        else raises :class:`PinMismatch`."""
        trust = await self._trust(saved)
        try:
            ws = await self._connect(trust)
        except ssl.SSLCertVerificationError:
            if not trust.anchors:
                raise
            trust = await discover(self.url, trust.fingerprints + self._pins(saved))
            ws = await self._connect(trust)
        self.trust = trust
        return ws

    def _presented(self, ws: ClientConnection) -> str | None:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        return ssl.DER_cert_to_PEM_cert(ssl_object.getpeercert(binary_form=True))

    def _keep_anchors(self, anchors: tuple[str, ...]) -> None:
        """Trust exactly ``anchors`` from now on, saved with the credentials."""
        self.trust = Trust(anchors)
        saved = credentials.load(self.settings.data_dir)
        if saved is not None and (saved.anchors != anchors or saved.pin):
            credentials.save(self.settings.data_dir,
                             dataclasses.replace(saved, anchors=anchors, pin=""))

    @property
    def _mismatch_file(self) -> Path:
        return self.settings.data_dir / "pin-mismatches.json"

    def _remember_mismatch(self, exc: PinMismatch) -> None:
        """Keep a refused certificate to report once the hub is reached again."""
        found = self._mismatches()[-19:]
        found.append({"url": exc.url, "presented": exc.presented,
                      "expected": list(exc.expected), "at": time.time()})
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._mismatch_file.write_text(json.dumps(found))

    def _mismatches(self) -> list[dict[str, Any]]:
        try:
            found = json.loads(self._mismatch_file.read_text())
        except (OSError, ValueError):
            return []
        return found if isinstance(found, list) else []

    # -- one connection ---------------------------------------------------------------

    async def _session(self) -> None:
        saved = credentials.load(self.settings.data_dir)  # read once per connection
        hello = self._hello(saved)
        async with await self._open(saved) as ws:
            self._ws = ws
            await ws.send(encode(hello))
            welcome = decode_hub_message(await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT_S))
            if not isinstance(welcome, Welcome):
                raise ProtocolViolation(closecodes.INVALID_MESSAGE, "expected welcome")
            self._mismatch_file.unlink(missing_ok=True)  # reported in the hello
            presented = self._presented(ws)
            await self._welcomed(welcome)
            if presented is not None and self.trust.anchors:
                self._keep_anchors((presented, welcome.tls_next) if welcome.tls_next
                                   else (presented,))
            async for frame in ws:
                if isinstance(frame, bytes):
                    if self.on_binary is None:
                        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "unexpected binary")
                    await self.on_binary(frame)
                    continue
                message = decode_hub_message(frame)
                if isinstance(message, Ping):
                    await ws.send(encode(Pong(seq=message.seq)))
                elif isinstance(message, ConfigPush):
                    await self._apply(message.config)
                    await ws.send(encode(ConfigApplied()))
                elif isinstance(message, TlsNext):
                    self._next_certificate(message.certificate)
                else:
                    handler = self.handlers.get(str(getattr(message, "type", "")))
                    if handler is None:
                        log.warning("no handler for %s; ignored", getattr(message, "type", "?"))
                    else:
                        await self._handle(handler, message)

    @staticmethod
    async def _handle(handler: Any, message: Any) -> None:
        """Run a role's handler; a bug in one must not cut the agent off the hub.

        An exception escaping here would close the connection (1011), the hub would mark
        the agent down, fail every task on it, and push the same message again when it
        reconnects: one bad message would take the whole agent down in a loop. The hub's
        own timeouts report the unanswered request instead.
        """
        try:
            await handler(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handling %s failed; the agent stays connected",
                          getattr(message, "type", "?"))

    def _next_certificate(self, pem: str) -> None:
        """The hub announced the certificate it switches to at its next start: trust it
        beside the current one (a hub trusted through the system's CAs needs nothing)."""
        if not self.trust.anchors or pem in self.trust.anchors:
            return
        self._keep_anchors((*self.trust.anchors[:1], pem))
        log.info("the hub announced its next certificate %s; trusted from now on",
                 fingerprint(pem))

    async def _welcomed(self, welcome: Welcome) -> None:
        self.agent_id = welcome.agent_id
        if welcome.secret is not None:
            path = credentials.save(
                self.settings.data_dir,
                credentials.Credentials(
                    welcome.agent_id, welcome.secret, self.settings.name,
                    self.settings.kind, self.settings.hub_url, anchors=self.trust.anchors,
                ),
            )
            self._token = None  # used up
            log.info("enrolled as %s; credentials saved to %s", welcome.agent_id, path)
        self.registrations += 1
        self.settings.backoff.reset()
        log.info("registered with %s as %s %s", self.settings.hub_url, self.settings.kind,
                 self.settings.name)
        self.connected.set()
        await self._apply(welcome.config)
        if self._on_connected is not None:
            await _maybe_await(self._on_connected(self))

    async def _apply(self, config: dict[str, Any]) -> None:
        self.config = config
        log.info("config applied: %s", config)
        if self._on_config is not None:
            await _maybe_await(self._on_config(config))
        for hook in self.on_config_hooks:
            await _maybe_await(hook(config))


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
