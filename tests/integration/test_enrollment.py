"""Enrollment over real processes: token once, then id + secret; every refusal says why."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable

from processes import AgentProcess, HubProcess


def test_token_is_exchanged_for_saved_credentials_used_on_later_starts(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    creds_path = agent.data_dir / "credentials.json"
    creds = json.loads(creds_path.read_text())
    assert creds["agent_id"].startswith("ag_") and creds["secret"].startswith("crs_")
    assert stat.S_IMODE(os.stat(creds_path).st_mode) == 0o600
    # The hub keeps only digests: neither the secret nor a token is in its database.
    db = (hub.data_dir / "hub.sqlite3").read_bytes() + (
        hub.data_dir / "hub.sqlite3-wal").read_bytes()
    assert creds["secret"].encode() not in db
    agent.stop()
    hub.wait_state("engine-1", "down")

    again = spawn_agent(hub, "engine-1", "engine", None)  # no token this time
    hub.wait_state("engine-1", "up")
    assert again.output().count("enrolled as") == 1  # only the first start enrolled
    assert json.loads(creds_path.read_text())["agent_id"] == creds["agent_id"]


def test_a_reused_token_is_refused_with_the_reason(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    token = hub.enroll("engine")
    spawn_agent(hub, "engine-1", "engine", token)
    hub.wait_state("engine-1", "up")
    second = spawn_agent(hub, "engine-2", "engine", token)
    assert second.wait() == 2
    assert "enrollment token already used" in second.output()
    assert "engine-2" not in hub.components()


def test_an_expired_token_is_refused(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    token = hub.enroll("engine", ttl_s=0.2)
    time.sleep(0.4)
    agent = spawn_agent(hub, "engine-1", "engine", token)
    assert agent.wait() == 2
    assert "enrollment token expired" in agent.output()


def test_an_unknown_token_is_refused(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine", "cre_not-a-real-token")
    assert agent.wait() == 2
    assert "enrollment token unknown" in agent.output()


def test_a_token_for_another_kind_is_refused(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine", hub.enroll("driver"))
    assert agent.wait() == 2
    assert "is for a driver, not a engine" in agent.output()


def test_a_wrong_secret_is_refused(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    agent.stop()
    path = agent.data_dir / "credentials.json"
    creds = json.loads(path.read_text())
    creds["secret"] = "crs_" + "x" * 43
    path.write_text(json.dumps(creds))
    again = spawn_agent(hub, "engine-1", "engine", None)
    assert again.wait() == 2
    assert "wrong secret" in again.output()
    assert hub.components()["engine-1"]["state"] == "down"


def test_no_token_and_no_credentials_says_how_to_get_one(
    hub: HubProcess, spawn_agent: Callable[..., AgentProcess]
) -> None:
    agent = spawn_agent(hub, "engine-1", "engine", None)
    assert agent.wait() == 2
    assert "POST /api/v1/enrollments" in agent.output()
