"""Registration rules against a real SQLite store, no sockets: auth, merge, replace."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backend.errors import AuthError
from backend.hub.component import Component
from backend.hub.events import EventLog
from backend.hub.health import Health, HealthSettings
from backend.hub.registry import Registry
from backend.hub.schema import MIGRATIONS
from backend.protocol import ConfigPush, Hello, closecodes
from backend.protocol.messages import Message
from backend.store import Store


class FakeLink:
    """Records what the registry sends and whether it closed the link."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.sent_bytes: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def send_bytes(self, data: bytes) -> None:
        self.sent_bytes.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _registry(tmp_path: Path, clock: Clock) -> tuple[Store, Registry]:
    store = Store(tmp_path / "hub.sqlite3", MIGRATIONS)
    await store.open()
    return store, Registry(store, EventLog(store), HealthSettings(), clock=clock)


async def test_enroll_then_authenticate_with_id_and_secret(tmp_path: Path) -> None:
    clock = Clock()
    store, reg = await _registry(tmp_path, clock)
    enrollment = await reg.create_enrollment("engine", ttl_s=60)
    hello = Hello(kind="engine", name="e1", enroll_token=enrollment.token)
    agent_id, secret = await reg.authenticate(hello)
    assert secret is not None
    with pytest.raises(AuthError, match="already used"):
        await reg.authenticate(hello)
    again = Hello(kind="engine", name="e1", agent_id=agent_id, secret=secret)
    assert await reg.authenticate(again) == (agent_id, None)
    with pytest.raises(AuthError, match="wrong secret"):
        await reg.authenticate(again.model_copy(update={"secret": secret + "x"}))
    with pytest.raises(AuthError, match="unknown agent id"):
        await reg.authenticate(again.model_copy(update={"agent_id": "ag_nobody"}))
    with pytest.raises(AuthError) as info:
        await reg.authenticate(again.model_copy(update={"name": "e2"}))
    assert info.value.code == closecodes.FORBIDDEN and "belong to engine 'e1'" in info.value.reason
    await store.close()


async def test_tokens_expire_on_the_hub_clock(tmp_path: Path) -> None:
    clock = Clock()
    store, reg = await _registry(tmp_path, clock)
    enrollment = await reg.create_enrollment("driver", ttl_s=5)
    clock.now += 5
    with pytest.raises(AuthError, match="expired"):
        await reg.authenticate(Hello(kind="driver", name="d", enroll_token=enrollment.token))
    await store.close()


async def test_a_new_enrollment_under_a_name_revokes_the_old_credentials(tmp_path: Path) -> None:
    store, reg = await _registry(tmp_path, Clock())
    first = await reg.create_enrollment("engine", 60)
    old_id, old_secret = await reg.authenticate(
        Hello(kind="engine", name="e1", enroll_token=first.token))
    second = await reg.create_enrollment("engine", 60)
    await reg.authenticate(Hello(kind="engine", name="e1", enroll_token=second.token))
    with pytest.raises(AuthError, match="revoked"):
        await reg.authenticate(Hello(kind="engine", name="e1", agent_id=old_id,
                                     secret=old_secret))
    await store.close()


async def test_register_merges_and_replaces_an_older_connection(tmp_path: Path) -> None:
    store, reg = await _registry(tmp_path, Clock())
    await reg.put_config("e1", {"block": 256, "meters": {"hz": 30}})
    old, new = FakeLink(), FakeLink()
    hello = Hello(kind="engine", name="e1", config={"block": 1024, "meters": {"hold": 1}})
    component = await reg.register(hello, "ag_1", old)
    assert component.config == {"block": 256, "meters": {"hold": 1, "hz": 30}}
    assert component.state is Health.HALF_OPEN
    await reg.set_state(component, Health.UP, "answered")
    again = await reg.register(hello, "ag_1", new)
    assert again is component and len(reg.components) == 1
    assert old.closed is not None and old.closed[0] == closecodes.REPLACED
    assert component.state is Health.HALF_OPEN  # registering again is half-open again
    await reg.disconnected(component, old, "late close of the old link")
    assert component.state is Health.HALF_OPEN and component.link is new  # ignored
    await reg.disconnected(component, new, "gone")
    assert component.state is Health.DOWN
    await store.close()


async def test_the_welcome_is_sent_before_a_listener_of_the_registration_can_send(
        tmp_path: Path) -> None:
    """Found by the chaos suite: an engine named by two tasks came back, the task service
    (a state listener) pushed a spec before the welcome, and the engine, expecting a
    welcome first, dropped the connection and retried for ever."""
    store, reg = await _registry(tmp_path, Clock())
    pushed: list[asyncio.Task[None]] = []

    async def push_spec(component: Component, state: Health, reason: str) -> None:
        async def send() -> None:
            if component.link is not None:
                await component.link.send(ConfigPush(config={"pushed": True}))

        pushed.append(asyncio.create_task(send()))
        await asyncio.sleep(0)  # the pushes run while the listener still works
        await asyncio.sleep(0)

    reg.dispatch.on_state(push_spec)
    link = FakeLink()

    async def welcome(component: Component) -> None:
        await asyncio.sleep(0.01)  # a slow socket: the others must wait for it
        await link.send(ConfigPush(config={"welcome": True}))

    await reg.register(Hello(kind="engine", name="e1"), "ag_1", link, welcome=welcome)
    await asyncio.gather(*pushed)
    assert [m.model_dump()["config"] for m in link.sent] == [{"welcome": True},
                                                              {"pushed": True}]
    await store.close()


async def test_put_config_pushes_to_a_connected_component(tmp_path: Path) -> None:
    store, reg = await _registry(tmp_path, Clock())
    link = FakeLink()
    await reg.register(Hello(kind="engine", name="e1", config={"a": 1}), "ag_1", link)
    merged = await reg.put_config("e1", {"b": 2})
    assert merged == {"a": 1, "b": 2}
    assert [m.model_dump() for m in link.sent] == [{"type": "config", "config": merged}]
    await store.close()


async def test_restart_loads_components_half_open(tmp_path: Path) -> None:
    store, reg = await _registry(tmp_path, Clock())
    component = await reg.register(Hello(kind="driver", name="d1"), "ag_1", FakeLink())
    await reg.set_state(component, Health.UP, "answered")
    await store.close()
    store, reg = await _registry(tmp_path, Clock())
    await reg.load()
    assert reg.components["d1"].state is Health.HALF_OPEN
    assert reg.components["d1"].link is None
    await reg.close_all("test over")
    await store.close()
