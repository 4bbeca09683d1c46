"""A role's handler that fails must not cut the agent off the hub."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from backend.agents.session import AgentSession
from backend.protocol.tasks import TaskDrop


async def test_a_failing_handler_is_logged_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    async def broken(message: Any) -> None:
        seen.append(message)
        raise AttributeError("'Graph' object has no attribute '_ahead'")

    message = TaskDrop(task_id="t_1")
    with caplog.at_level(logging.ERROR, logger="backend.agents.session"):
        await AgentSession._handle(broken, message)  # returns: the session loop goes on
    assert seen == [message]
    assert "handling task.drop failed; the agent stays connected" in caplog.text
    assert "'Graph' object has no attribute '_ahead'" in caplog.text


async def test_cancelling_the_session_still_cancels_a_handler() -> None:
    started = asyncio.Event()

    async def slow(message: Any) -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(AgentSession._handle(slow, TaskDrop(task_id="t_1")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
