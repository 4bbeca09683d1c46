"""The event log over SSE: ids increase, and Last-Event-ID resumes exactly."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from processes import AgentProcess, HubProcess


def test_resume_after_a_forced_disconnect_misses_none_and_repeats_none(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    first = hub.events()
    assert first and first[0]["event"] == "hub.started"
    last_seen = first[-1]["id"]

    # A raw client reads part of the stream, then its connection is cut mid-stream.
    host, port = hub.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
                 f"Authorization: Bearer {hub.token}\r\n"
                 f"Last-Event-ID: {last_seen}\r\n\r\n".encode())
    for kind in ("engine", "driver", "runner"):
        hub.enroll(kind)  # three events while the raw client is attached
    time.sleep(0.3)
    received = sock.recv(65536).decode()
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    got = [int(line[4:]) for line in received.splitlines() if line.startswith("id: ")]
    assert got, received
    cut_after = got[0]  # pretend only the first record arrived before the cut

    # More happens while nobody listens.
    spawn_agent(hub, "engine-1")
    hub.wait_state("engine-1", "up")

    resumed = hub.events(headers={"Last-Event-ID": str(cut_after)})
    everything = hub.events(after=0)
    expected = [e["id"] for e in everything if e["id"] > cut_after]
    assert [e["id"] for e in resumed] == expected  # exactly what was missed
    assert len(expected) >= 5  # 2 enrollments + registration, up, and engine's enrollment
    ids = [e["id"] for e in everything]
    assert ids == sorted(set(ids))  # monotonic, no repeats
    # The query parameter is the same resume point for clients that cannot set headers.
    assert [e["id"] for e in hub.events(after=cut_after)] == expected


def test_events_carry_the_reason_of_each_state_change(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1")
    hub.wait_state("engine-1", "up")
    agent.stop()
    hub.wait_state("engine-1", "down")
    changes = [e["data"]["data"] for e in hub.events() if e["event"] == "component.state"]
    assert [(c["old"], c["new"]) for c in changes] == [("half_open", "up"), ("up", "down")]
    assert "answered" in changes[0]["reason"]
    assert "agent closed the connection (agent shutting down)" == changes[1]["reason"]
