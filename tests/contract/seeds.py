"""The state the contract fuzz needs to reach every operation with a 2xx, made through the
public API before schemathesis starts.

A fuzzer cannot invent a runner's secret, a flow waiting on a lock or a render that is still
running, so the test makes them and hands their ids to schemathesis: fixed path parameters
and headers per operation (:func:`pins`, appended to ``schemathesis.toml``), and, for the
state a call uses up (a playing task that ``stop`` stops, a running render that ``cancel``
cancels, a lock that one good candidate releases), the ``hooks`` module renews it just
before the call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hooks import DELETED_MEDIA, KEPT_MEDIA, RENEWED, media_sha256
from node_processes import NodeProcess
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import Farm

from backend.audio.spec import EXAMPLE

#: The task whose playing ``stop`` stops, and whose renders ``cancel`` cancels: long
#: enough that a render is still running when the call that follows its start arrives.
LONG = {**EXAMPLE, "tracks": [
    {"id": f"t{i}", "source": {"type": "tone", "freq_hz": 110.0 * (i + 1), "level_dbfs": -24,
                               "duration_s": 600}} for i in range(8)], "instances": {}}
#: A task with the instance ``d1.eq`` fixed on the driver ``d1`` (its parameters patched).
FIXED = {**EXAMPLE, "tracks": [{**EXAMPLE["tracks"][0], "chain": ["d1.eq"]}],
         "instances": {"d1.eq": {"model": "eq", "location": {"driver": "d1"}}}}


@dataclass
class Seeds:
    """Ids of the state made for the fuzz, by what the operations use them for."""

    component: str
    playing: str  # a task to play and stop
    rendering: str  # a task to render and cancel the render
    rendered: str  # a task to render (the example), and a render of it that is done
    render: str
    fixed: str  # a task with the instance d1.eq on the driver d1
    runner: str  # a runner that stays (GET)
    revoked: str  # a runner to revoke (DELETE)
    running_job: str  # a job running on ``runner``
    runner_id: str  # ``runner``'s channel id and secret (artifact uploads)
    runner_secret: str
    artifact_job: str  # a finished render job with the artifact ``render.wav``
    locked_run: str  # a run of ``hello`` waiting on its input lock
    node: str  # a standalone node (the proxy's target)
    node_run: str  # a run on that node, waiting on its input lock
    spare: str  # a node whose link and unregistration the fuzz may call
    spare_id: str
    spare_secret: str
    media: str  # uploaded media that stays (fetch, info, upload again)
    engine_id: str  # the engine's channel id and secret (a media fetch by an agent)
    engine_secret: str
    processes: list[NodeProcess]

    def environment(self, url: str, token: str, ca: Path | None) -> dict[str, str]:
        """What ``hooks`` reads: the hub and the ids it renews state for."""
        return {"CONTROLROOM_FUZZ_HUB": url, "CONTROLROOM_FUZZ_TOKEN": token,
                "CONTROLROOM_FUZZ_CA": str(ca or ""),
                "CONTROLROOM_FUZZ_PLAYING": self.playing,
                "CONTROLROOM_FUZZ_RENDERING": self.rendering,
                "CONTROLROOM_FUZZ_RENDERED": self.rendered,
                "CONTROLROOM_FUZZ_LOCKED_RUN": self.locked_run}


def pins(seeds: Seeds) -> str:
    """Per-operation fixed parameters (TOML), appended to the committed configuration."""
    def operation(method: str, route: str, **parameters: str) -> str:
        fixed = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in parameters.items())
        return (f'\n[[operations]]\ninclude-name = "{method} {route}"\n'
                f"parameters = {{ {fixed} }}\n")

    return "".join([
        operation("GET", "/api/v1/components/{component_id}", component_id=seeds.component),
        operation("POST", "/api/v1/tasks/{task_id}/stop", task_id=seeds.playing),
        operation("POST", "/api/v1/tasks/{task_id}/renders/{render_id}/cancel",
                  task_id=seeds.rendering, render_id=RENEWED),
        operation("POST", "/api/v1/tasks/{task_id}/render", task_id=seeds.rendered),
        operation("GET", "/api/v1/tasks/{task_id}/renders/{render_id}/file",
                  task_id=seeds.rendered, render_id=seeds.render),
        operation("PATCH", "/api/v1/tasks/{task_id}/instances/{instance_id}",
                  task_id=seeds.fixed, instance_id="d1.eq"),
        operation("GET", "/api/v1/runners/{runner_id}", runner_id=seeds.runner),
        operation("DELETE", "/api/v1/runners/{runner_id}", runner_id=seeds.revoked),
        operation("PUT", "/api/v1/jobs/{job_id}/artifacts/{name}", job_id=seeds.running_job,
                  **{"x-agent-id": seeds.runner_id, "x-agent-secret": seeds.runner_secret}),
        operation("GET", "/api/v1/jobs/{job_id}/artifacts/{name}", job_id=seeds.artifact_job,
                  name="render.wav"),
        operation("GET", "/node/v1/runs/{fid}", fid=seeds.locked_run),
        operation("POST", "/node/v1/runs/{fid}/cancel", fid=RENEWED),
        operation("GET", "/node/v1/runs/{fid}/lock/{lid}/candidate", fid=seeds.locked_run,
                  lid=RENEWED),
        operation("POST", "/node/v1/runs/{fid}/lock/{lid}/candidate", fid=seeds.locked_run,
                  lid=RENEWED),
        operation("POST", "/api/v1/nodes/{name}/token", name=seeds.spare,
                  **{"body.agent_id": seeds.spare_id, "body.secret": seeds.spare_secret}),
        operation("POST", "/api/v1/nodes/{name}/unregister", name=seeds.spare,
                  **{"body.agent_id": seeds.spare_id, "body.secret": seeds.spare_secret}),
        operation("GET", "/api/v1/media/{sha256}", sha256=seeds.media,
                  **{"x-agent-id": seeds.engine_id, "x-agent-secret": seeds.engine_secret}),
        operation("GET", "/api/v1/media/{sha256}/info", sha256=seeds.media),
        operation("PUT", "/api/v1/media/{sha256}", sha256=seeds.media),
        operation("DELETE", "/api/v1/media/{sha256}", sha256=media_sha256(DELETED_MEDIA)),
        operation("GET", "/api/v1/nodes/{name}/{path}", name=seeds.node, path="flows"),
        operation("POST", "/api/v1/nodes/{name}/{path}", name=seeds.node,
                  path=f"runs/{seeds.node_run}/cancel"),
    ])


def seed(hub: HubProcess, spawn: Callable[..., AgentProcess], tmp_path: Path) -> Seeds:
    """Engine, driver, two runners, two standalone nodes, and the tasks, jobs, runs and
    media."""
    pin = ["--pin", hub.pin] if hub.url.startswith("https:") else []
    for name, kind in (("e1", "engine"), ("d1", "driver")):
        spawn(hub, name, kind, "", *pin)
    farm = Farm(hub, lambda *a: spawn(*a[:4], *pin, *a[4:]), tmp_path)
    farm.runner("r1")
    farm.runner("r2")
    for name in ("e1", "d1"):
        hub.wait_state(name, "up", timeout=30)
    for name in ("r1", "r2"):
        farm.ready(name, timeout=30)

    def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        answer = hub.client.request(method, f"{hub.url}{path}", json=body)
        assert answer.status_code == status, f"{method} {path}: {answer.text}"
        return answer.json() if answer.content else None

    def reserve(spec: dict[str, Any]) -> str:
        task = str(call("POST", "/api/v1/tasks", spec, 201)["id"])
        wait_until(lambda: call("GET", f"/api/v1/tasks/{task}")["state"] == "ready", 30,
                   f"task {task} to be ready")
        return task

    playing, rendering, fixed, rendered = map(reserve, (LONG, LONG, FIXED, EXAMPLE))
    render = call("POST", f"/api/v1/tasks/{rendered}/render", {}, 202)["render_id"]
    wait_until(lambda: call("GET", f"/api/v1/tasks/{rendered}/renders/{render}")["state"]
               == "done", 30, "the example's render")
    artifact_job = farm.submit(kind="render", payload={"spec": EXAMPLE})
    farm.wait(artifact_job, "succeeded", timeout=60)
    running_job = farm.submit(["sleep", "600"])
    view = farm.wait(running_job, "running", timeout=30)
    runner = view["runner"]
    revoked = "r2" if runner == "r1" else "r1"
    credentials = json.loads((farm.tmp_path / "agents" / runner / "credentials.json")
                             .read_text())
    locked = call("POST", "/node/v1/runs", {"flow": "hello"}, 201)["fid"]
    nodes = [NodeProcess(hub, name, tmp_path / name).start() for name in ("n1", "n2")]
    node_run = call("POST", "/api/v1/nodes/n1/runs", {"flow": "gate"}, 201)["fid"]
    spare = json.loads((tmp_path / "n2" / "credentials.json").read_text())
    for data in (KEPT_MEDIA, DELETED_MEDIA):
        answer = hub.client.put(f"{hub.url}/api/v1/media/{media_sha256(data)}", content=data)
        assert answer.status_code == 201, answer.text
    engine = json.loads((tmp_path / "agents" / "e1" / "credentials.json").read_text())
    return Seeds(
        component="e1", playing=playing, rendering=rendering,
        rendered=rendered, render=render, fixed=fixed, runner=runner, revoked=revoked,
        running_job=running_job, runner_id=credentials["agent_id"],
        runner_secret=credentials["secret"], artifact_job=artifact_job, locked_run=locked,
        node="n1", node_run=node_run, spare="n2",
        spare_id=spare["agent_id"], spare_secret=spare["secret"],
        media=media_sha256(KEPT_MEDIA), engine_id=engine["agent_id"],
        engine_secret=engine["secret"], processes=nodes,
    )

