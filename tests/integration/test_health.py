"""Real hub, real agent processes: registration, health under SIGKILL and SIGSTOP, restarts.

Bounds here are generous (several times the target) so the suite never flakes on a loaded
machine; the figures themselves come from ``benchmarks/failure_detection.py``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from processes import AgentProcess, HubProcess, wait_until


def test_three_agents_reach_up_then_kill_and_hang_are_detected(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    engine = spawn_agent(hub, "engine-1", "engine")
    driver = spawn_agent(hub, "driver-1", "driver")
    bystander = spawn_agent(hub, "driver-2", "driver")
    for name in ("engine-1", "driver-1", "driver-2"):
        up = hub.wait_state(name, "up")
        assert up["rtt_ms"] is not None and up["last_seen"] is not None
    assert hub.components()["driver-1"]["kind"] == "driver"

    # SIGKILL: the socket closes, so down at once (target 0.5 s; bound 2 s).
    engine.send(signal.SIGKILL)
    killed_at = time.monotonic()
    down = hub.wait_state("engine-1", "down", timeout=5)
    assert time.monotonic() - killed_at < 2.0
    assert down["connected"] is False

    # SIGSTOP: checks go unanswered; down within interval x N + timeout = 3.5 s.
    driver.send(signal.SIGSTOP)
    stopped_at = time.monotonic()
    time.sleep(1.5)
    assert hub.components()["driver-1"]["state"] == "up"  # fewer than 3 misses: still up
    hub.wait_state("driver-1", "down", timeout=10)
    assert 2.0 < time.monotonic() - stopped_at < 7.0

    # SIGCONT: it answers again on the same connection and is up.
    driver.send(signal.SIGCONT)
    hub.wait_state("driver-1", "up", timeout=5)

    # The bystander never left up.
    assert hub.components()["driver-2"]["state"] == "up"
    assert bystander.proc.poll() is None


def test_hub_restart_brings_agents_back_once(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess]
) -> None:
    hub = start_hub("--health-interval", "0.5")
    spawn_agent(hub, "engine-1", "engine")
    spawn_agent(hub, "driver-1", "driver")
    hub.wait_state("engine-1", "up")
    hub.wait_state("driver-1", "up")
    hub.client.put(f"{hub.url}/api/v1/configs/engine-1", json={"block_size": 256},
                   headers=hub.auth).raise_for_status()
    last_id = _last_event_id(hub)

    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        assert hub.stop(stop_signal) in (0, -signal.SIGKILL)
        hub.start()  # same data dir, same port
        states = {c["id"]: c["state"] for c in hub.components().values()}
        assert set(states) == {"engine-1", "driver-1"}  # loaded from the store
        hub.wait_state("engine-1", "up", timeout=30)
        hub.wait_state("driver-1", "up", timeout=30)
        components = hub.components()
        assert sorted(components) == ["driver-1", "engine-1"]  # no duplicates
        assert components["engine-1"]["config"]["block_size"] == 256  # config kept
        new_last = _last_event_id(hub)
        assert new_last > last_id  # the event log continued, ids still increasing
        last_id = new_last


def test_stale_components_go_down_if_they_do_not_return(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess]
) -> None:
    hub = start_hub("--health-interval", "0.3", "--health-timeout", "0.2")
    agent = spawn_agent(hub, "engine-1")
    hub.wait_state("engine-1", "up")
    hub.stop()
    agent.stop()
    hub.start()
    assert hub.components()["engine-1"]["state"] == "half_open"
    down = hub.wait_state("engine-1", "down", timeout=5)
    assert down["connected"] is False


def test_agent_waits_for_a_hub_that_is_not_there_yet(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess]
) -> None:
    hub = start_hub()
    token = hub.enroll("engine")
    hub.stop()
    agent = spawn_agent(hub.url, "engine-1", "engine", token)
    wait_until(lambda: "unreachable" in agent.output(), 10, "the agent to report the hub down")
    hub.start()
    hub.wait_state("engine-1", "up", timeout=30)
    assert "reconnecting in" in agent.output()


def _last_event_id(hub: HubProcess) -> int:
    ids = [e["id"] for e in hub.events()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    return ids[-1]


def test_a_second_process_with_the_same_name_replaces_the_first_which_stops(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    first = spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    second = spawn_agent(hub, "engine-1", "engine")  # a fresh enrollment, same name
    assert first.wait() == 2
    assert "replaced by a newer connection" in first.output()
    hub.wait_state("engine-1", "up")
    assert second.proc.poll() is None
    assert list(hub.components()) == ["engine-1"]
