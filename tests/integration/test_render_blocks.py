"""Through the hub and a real engine: a render, read in large blocks, is bit-identical to
the audio core's render at the spec's block size, for every model, split or not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from processes import AgentProcess, HubProcess
from task_calls import TaskCalls

from backend.audio import MODELS, Graph, TaskSpec, render
from tests.backend.audio.audio_helpers import model_spec


@pytest.mark.parametrize("processes", [1, 2])
def test_every_model_renders_as_at_the_spec_block_size(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path,
        processes: int) -> None:
    calls = TaskCalls(hub)
    engine = spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    calls.configure("engine-1", engine.output, render_processes=processes)
    for model in sorted(MODELS):
        spec = model_spec(tmp_path, model, 1024)
        task = calls.reserve(spec)
        rendered = calls.render(task["id"], "float32")
        with Graph(TaskSpec.model_validate(spec)) as graph:  # the spec's blocks, one process
            render(graph, tmp_path / f"{model}.wav", "float32")
        assert rendered == (tmp_path / f"{model}.wav").read_bytes(), model
        calls.call("POST", f"/tasks/{task['id']}/release").raise_for_status()
