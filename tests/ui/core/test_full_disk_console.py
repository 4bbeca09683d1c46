"""The console on a full disk: its render cache, and a hub whose data dir is full.

Both for real: the cache and the hub's data dir are small tmpfs mounts filled to the last
byte (``tests/tmpfs.py``; root only, as in CI). The message checked is the one a view shows
(:class:`ui.core.coroutines.CoroutineRunner` ``failed``, a notification in the window).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import AgentProcess, HubProcess
from tests.task_calls import TaskCalls
from tests.tmpfs import Tmpfs, mounted
from tests.ui.harness import QtLoop
from tests.ui.harness import wait_until as loop_wait_until
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner

SPEC = {
    "sample_rate": 48000,
    "block_size": 1024,
    "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 440, "level_dbfs": -12,
                                         "duration_s": 2}, "chain": ["eq"]}],
    "instances": {"eq": {"model": "eq"}},
    "window": {"start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z"},
}


@pytest.fixture
def hub_disk(tmp_path: Path) -> Iterator[Tmpfs]:
    with mounted(tmp_path / "hubfs", 32) as disk:
        yield disk


@pytest.fixture
def cache_disk(tmp_path: Path) -> Iterator[Tmpfs]:
    with mounted(tmp_path / "cache", 4) as disk:
        yield disk


@pytest.fixture
def studio(hub_disk: Tmpfs, tmp_path: Path) -> Iterator[tuple[HubProcess, AgentProcess]]:
    hub = HubProcess(hub_disk.path / "hub").start()
    engine = AgentProcess(hub.url, "engine", "engine-1", tmp_path / "engine",
                          hub.enroll("engine"))
    try:
        yield hub, engine
    finally:
        engine.stop()
        if hub.proc is not None and hub.proc.poll() is None:
            hub.send(signal.SIGCONT)
        hub.close()


def test_a_full_render_cache_and_a_full_hub_are_said_plainly_and_the_console_goes_on(
        qt_loop: QtLoop, studio: tuple[HubProcess, AgentProcess], hub_disk: Tmpfs,
        cache_disk: Tmpfs) -> None:
    hub, _engine = studio
    hub.wait_state("engine-1", "up", timeout=60)
    calls = TaskCalls(hub)
    task_id = calls.reserve(SPEC)["id"]
    rendered = calls.render(task_id)
    render_id = calls.task(task_id)["renders"][-1]["render_id"]
    failures: list[tuple[str, str]] = []

    async def scenario() -> None:
        bridge = await HubBridge.attach(hub.url, hub.token, cache_dir=cache_disk.path)
        runner = CoroutineRunner()
        runner.failed.connect(lambda what, message: failures.append((what, message)))
        try:
            # The render cache is full: the fetch fails with what and where, no partial file.
            cache_disk.fill()
            runner.run("Fetch render", bridge.fetch_render(task_id, render_id))
            await loop_wait_until(lambda: bool(failures), "the fetch to fail")
            what, message = failures.pop()
            where = bridge.render_cache / task_id
            assert what == "Fetch render"
            assert message.startswith(f"render {render_id}: the console's render cache is "
                                      f"full: no space left at {where}"), message
            assert f"free space at {where} and try again" in message
            assert [p.name for p in cache_disk.path.rglob("*") if p.is_file()] == [
                "filler.bin"]
            assert (await bridge.client.task(task_id))["state"] == "ready"  # still served

            # The hub's data dir is full: its 507 reads as a sentence too.
            hub_disk.fill()
            runner.run("Store config", bridge.put_config("engine-1", {"block_size": 512}))
            await loop_wait_until(lambda: bool(failures), "the change to be refused")
            what, message = failures.pop()
            assert message.startswith(f"the hub's data dir is full: no space left at "
                                      f"{hub.data_dir}"), message
            assert f"free space at {hub.data_dir} and try again" in message

            # Space returns: both work again, with no restart of anything.
            cache_disk.free()
            hub_disk.free()
            local = await bridge.fetch_render(task_id, render_id)
            assert local.read_bytes() == rendered
            assert (await bridge.put_config("engine-1", {"block_size": 512}))["stored"] == {
                "block_size": 512}
            assert failures == []
        finally:
            await bridge.aclose()

    try:
        qt_loop.run(scenario(), timeout=60)
    finally:
        cache_disk.free()
        hub_disk.free()
