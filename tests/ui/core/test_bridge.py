"""The hub-to-Qt bridge over a real hub on a loopback port: history first, then live
events, none twice; snapshots the views cannot alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.console import embedded_bridge
from backend.host import Host, HostSettings
from tests.ui.harness import QtLoop, wait_until
from ui.core.bridge import HubBridge


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
        host = Host(HostSettings(data_dir=tmp_path / "hub", port=0))
        await host.start()
        try:
            for n in range(5):
                await host.hub.events.append("test.before", f"s{n}", {"n": n})
            bridge = await embedded_bridge(host, refresh_s=0.1, backlog=3,
                                           cache_dir=tmp_path / "cache")
            assert not bridge.is_remote and bridge.base_url == host.base_url
            got = Received(bridge)
            task = bridge.start()
            await wait_until(lambda: len(got.events) >= 3 and got.snapshots, "replayed")
            # Only the newest `backlog` stored events are replayed, in order.
            assert [e["type"] for e in got.events] == ["test.before"] * 3
            assert [e["subject"] for e in got.events] == ["s2", "s3", "s4"]

            for n in range(3):
                await host.hub.events.append("test.after", f"t{n}", {"n": n})
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
            await bridge.aclose()
        finally:
            await host.stop()

    qt_loop.run(scenario())


def test_snapshots_are_copies_the_views_cannot_alias(qt_loop: QtLoop, tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(HostSettings(data_dir=tmp_path / "hub", port=0))
        await host.start()
        try:
            await host.hub.registry.put_config("x", {"a": {"b": 1}})
            bridge = await embedded_bridge(host, refresh_s=0.1, cache_dir=tmp_path / "cache")
            got = Received(bridge)
            bridge.start()
            await wait_until(lambda: bool(got.snapshots), "a snapshot")
            stored = await bridge.stored_config("x")
            stored["a"]["b"] = 2
            assert await bridge.stored_config("x") == {"a": {"b": 1}}
            for view in bridge.snapshot():
                view["id"] = "changed"
            assert all(v["id"] != "changed" for v in bridge.snapshot())
            assert bridge.role == "studio"
            assert bridge.admin_token_path == tmp_path / "hub" / "admin.token"
            assert bridge.render_cache.parent == tmp_path / "cache"
            bridge.stop()
            await bridge.wait_stopped()
            await bridge.aclose()
        finally:
            await host.stop()

    qt_loop.run(scenario())
