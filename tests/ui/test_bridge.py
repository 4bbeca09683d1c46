"""The hub-to-Qt bridge over a real hub: history first, then live events, none twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from backend.hub import Component, Health, Hub, HubSettings
from tests.ui.harness import QtLoop, wait_until
from ui.bridge import HubBridge


class Received:
    def __init__(self, bridge: HubBridge) -> None:
        self.events: list[dict[str, Any]] = []
        self.snapshots: list[list[dict[str, Any]]] = []
        self.skipped: list[int] = []
        bridge.event_received.connect(self.events.append)
        bridge.components_changed.connect(self.snapshots.append)
        bridge.events_skipped.connect(self.skipped.append)

    def ids(self) -> list[int]:
        return [e["id"] for e in self.events]


def test_history_then_live_events_then_a_clean_stop(qt_loop: QtLoop, tmp_path: Path) -> None:
    async def scenario() -> None:
        hub = Hub(HubSettings(tmp_path / "hub"))
        await hub.startup()
        try:
            for n in range(5):
                await hub.events.append("test.before", f"s{n}", {"n": n})
            bridge = HubBridge(hub, "http://127.0.0.1:1", refresh_s=0.1, backlog=3)
            got = Received(bridge)
            task = bridge.start()
            await wait_until(lambda: len(got.events) >= 3 and got.snapshots, "replayed")
            # Only the newest `backlog` stored events are replayed, in order.
            assert [e["type"] for e in got.events] == ["test.before"] * 3
            assert [e["subject"] for e in got.events] == ["s2", "s3", "s4"]

            for n in range(3):
                await hub.events.append("test.after", f"t{n}", {"n": n})
            await wait_until(lambda: len(got.events) == 6, "live events")
            assert got.ids() == sorted(set(got.ids()))  # in order, none twice
            assert got.events[-1] == {**got.events[-1], "type": "test.after", "subject": "t2",
                                      "data": {"n": 2}}

            # The snapshot is sent again on its own, without any event.
            count = len(got.snapshots)
            await wait_until(lambda: len(got.snapshots) >= count + 2, "periodic snapshots",
                             within=5)
            assert got.snapshots[-1] == []

            bridge.stop()
            await bridge.wait_stopped()
            assert task.cancelled()
            assert not hub.events._subscribers  # it unsubscribed
        finally:
            await hub.shutdown()

    qt_loop.run(scenario())


def test_a_dropped_subscription_is_followed_again_from_the_store(
    qt_loop: QtLoop, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        hub = Hub(HubSettings(tmp_path / "hub"))
        await hub.startup()
        try:
            bridge = HubBridge(hub, "http://127.0.0.1:1", refresh_s=0.1)
            got = Received(bridge)
            bridge.start()
            await wait_until(lambda: len(got.events) == 1, "hub.started replayed")
            # What EventLog.append does to a subscriber whose queue overflowed:
            # drop it and leave None as the end marker. Events go on meanwhile.
            (queue,) = hub.events._subscribers
            hub.events.unsubscribe(queue)
            for n in range(4):
                await hub.events.append("test.missed", f"m{n}", {})
            queue.put_nowait(None)
            await wait_until(lambda: len(got.events) == 5, "caught up from the store")
            await hub.events.append("test.live", "after", {})
            await wait_until(lambda: len(got.events) == 6, "live again")
            assert [e["type"] for e in got.events] == (
                ["hub.started"] + ["test.missed"] * 4 + ["test.live"])
            assert got.skipped == []  # 4 behind is well within what is caught up
            bridge.stop()
            await bridge.wait_stopped()
        finally:
            await hub.shutdown()

    qt_loop.run(scenario())


def test_snapshots_are_copies_the_views_cannot_alias(qt_loop: QtLoop, tmp_path: Path) -> None:
    async def scenario() -> None:
        hub = Hub(HubSettings(tmp_path / "hub"))
        await hub.startup()
        try:
            bridge = HubBridge(hub, "http://127.0.0.1:1")
            hub.registry.components["x"] = Component("x", "engine", Health.UP,
                                                     config={"a": {"b": 1}})
            (view,) = bridge.snapshot()
            view["config"]["a"]["b"] = 2
            assert hub.registry.components["x"].config == {"a": {"b": 1}}
            assert bridge.role == "studio"
            assert bridge.admin_token_path == tmp_path / "hub" / "admin.token"
            await asyncio.sleep(0)
        finally:
            await hub.shutdown()

    qt_loop.run(scenario())
