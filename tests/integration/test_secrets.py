"""No secret anywhere it should not be, after a full session at log level debug.

Every secret and token the session makes (the operator token, each enrollment token, each
agent's secret, the node's API token, a named token) is searched for, whole and as every
substring of 8 or more characters, in every log file, every stored file but the credential
files themselves, every API answer after the one that created it (the event log
included), and the command line of every process the session ran.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import psutil
from node_processes import NodeProcess, Runs
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import FAST

from backend.tls import Trust

#: Files that hold a secret on purpose (mode 0600), and only there.
CREDENTIAL_FILES = {"credentials.json", "admin.token", "node.token", "server.key", "next.key"}
TOKEN_RUN = re.compile(rb"[A-Za-z0-9_\-]{8,}")
SPEC: dict[str, Any] = {
    "sample_rate": 48000, "block_size": 1024,
    "tracks": [{"id": "bass", "source": {"type": "tone", "freq_hz": 110, "level_dbfs": -9,
                                         "duration_s": 2}, "chain": ["d1.comp"]}],
    "instances": {"d1.comp": {"model": "compressor", "location": {"driver": "d1"}}},
    "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"},
}


def grams(secret: str) -> set[bytes]:
    """Every 8-character substring: any longer one that leaks contains one of them."""
    raw = secret.encode()
    return {raw[i:i + 8] for i in range(len(raw) - 7)}


def leaks(haystack: bytes, needles: dict[bytes, str]) -> set[str]:
    """Which secrets (by label) have an 8-gram in ``haystack``: every run of token
    characters is cut into its 8-grams and looked up, linear in the haystack."""
    found = set()
    for run in TOKEN_RUN.findall(haystack):
        for i in range(len(run) - 7):
            label = needles.get(run[i:i + 8])
            if label is not None:
                found.add(label)
    return found


class Recorder:
    """Every API answer after the secrets it could echo were made."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, bytes]] = []

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append((f"{response.request.method} {response.request.url.path}",
                             response.content))


class Commands:
    """The command lines of this test's descendants, sampled while the session runs."""

    def __init__(self) -> None:
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Commands:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.02):
            for child in me.children(recursive=True):
                try:
                    self.seen.setdefault(child.pid, "\0".join(child.cmdline()))
                except psutil.Error:
                    pass


def test_a_full_session_leaves_no_secret_in_logs_files_answers_or_command_lines(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    with Commands() as commands:
        hub = start_hub("--tls", "on", "--log-level", "debug")
        recorder = Recorder()
        api = httpx.Client(base_url=f"{hub.url}/api/v1", timeout=30,
                           verify=Trust((hub.certificate,)).context(),
                           headers={"Authorization": f"Bearer {hub.token}"})
        secrets: dict[str, str] = {"operator token": hub.token}

        def enroll(kind: str) -> str:
            token = str(api.post("/enrollments", json={"kind": kind}).json()["token"])
            secrets[f"{kind} enrollment token"] = token
            return token

        debug = ("--log-level", "debug", "--pin", hub.pin)
        runner_config = tmp_path / "runner.json"
        runner_config.write_text(json.dumps(FAST))
        agents = [spawn_agent(hub, "e1", "engine", enroll("engine"), *debug),
                  spawn_agent(hub, "d1", "driver", enroll("driver"), *debug),
                  spawn_agent(hub, "r1", "runner", enroll("runner"), *debug,
                              "--config", str(runner_config))]
        for agent in agents:
            hub.wait_state(agent.name, "up")
        node = NodeProcess(hub, "node-a", tmp_path / "node-a", "--log-level", "debug")
        secrets["node enrollment token"] = str(node.token_for_hub)
        node.start()
        api.event_hooks["response"] = [recorder.hook]  # from here on, every answer

        # Audio: a task through the driver, rendered and released.
        reserved = api.post("/tasks", json=SPEC)
        assert reserved.status_code == 201, reserved.text
        tid = reserved.json()["id"]
        wait_until(lambda: api.get(f"/tasks/{tid}").json()["state"] == "ready", 15, "ready")
        rid = api.post(f"/tasks/{tid}/render", json={}).json()["render_id"]
        wait_until(lambda: api.get(f"/tasks/{tid}/renders/{rid}").json()["state"] == "done",
                   30, "the render")
        api.get(f"/tasks/{tid}/renders/{rid}/file")
        api.post(f"/tasks/{tid}/release")
        # A job whose program lists its environment's names: no token is handed down.
        names = "import os, sys, time; print(sorted(os.environ)); time.sleep(0.5)"
        jid = api.post("/jobs", json={"kind": "command", "needs": {"cpus": 0},
                                      "payload": {"argv": [sys.executable, "-c", names]}}
                       ).json()["id"]
        wait_until(lambda: api.get(f"/jobs/{jid}").json()["state"] == "succeeded", 30, "job")
        job_log = api.get(f"/jobs/{jid}/logs").text
        assert "CONTROLROOM_TOKEN" not in job_log and "PATH" in job_log
        api.get("/runners/r1/logs")
        # Flows, on the standalone node through the proxy and on the embedded one.
        for base in ("/nodes/node-a", "/nodes/local"):
            runs = Runs(api, f"{hub.url}/api/v1{base}", {})
            assert runs.wait(runs.start("hello", {"name": "x"}), "done")["state"] == "done"
        # A named token: made (its answer is the one place it may appear), used, revoked.
        api.event_hooks["response"] = []
        named = api.post("/tokens", json={"name": "wall", "kind": "viewer"}).json()["token"]
        api.event_hooks["response"] = [recorder.hook]
        secrets["named token"] = named
        assert api.get("/hub", headers={"Authorization": f"Bearer {named}"}).status_code == 200
        api.delete("/tokens/wall")
        for path in ("/hub", "/components", "/tasks", "/jobs", "/runners", "/nodes",
                     "/tokens", "/tls"):
            assert api.get(path).status_code == 200, path
        api.event_hooks["response"] = []  # a stream: recorded as it is read
        recorder.answers.append(("GET /api/v1/events", _events(api)))

        for agent in agents:
            saved = json.loads((agent.data_dir / "credentials.json").read_text())
            secrets[f"{agent.name}'s secret"] = saved["secret"]
        saved = json.loads((node.data_dir / "credentials.json").read_text())
        secrets["node-a's secret"] = saved["secret"]
        secrets["node-a's API token"] = node.token
        node.kill(signal.SIGTERM)
        node.close()
        for agent in agents:
            agent.stop()
        hub.stop()  # logs flushed, the store checkpointed
        api.close()

    needles = {gram: label for label, secret in secrets.items() for gram in grams(secret)}
    found: list[str] = []
    for path in _files(tmp_path):
        for label in leaks(path.read_bytes(), needles):
            found.append(f"{label} in {path.relative_to(tmp_path)}")
    for what, content in recorder.answers:
        found += [f"{label} in the answer to {what}" for label in leaks(content, needles)]
    for pid, line in commands.seen.items():
        found += [f"{label} on the command line of {pid}: {line[:120]}"
                  for label in leaks(line.encode(), needles)]
    assert len(recorder.answers) > 20 and len(commands.seen) >= 5
    assert any(path.suffix == ".log" for path in _files(tmp_path))
    assert not found, "\n".join(found)


def _events(api: httpx.Client) -> bytes:
    """The whole event log (server-sent events), read until the stream goes quiet."""
    content = bytearray()
    with api.stream("GET", "/events", params={"after": 0},
                    timeout=httpx.Timeout(10, read=1.0)) as response:
        assert response.status_code == 200
        try:
            for chunk in response.iter_bytes():
                content += chunk
        except httpx.ReadTimeout:
            pass
    assert b"token.revoked" in content and b"enrollment.used" in content
    return bytes(content)


def _files(root: Path) -> Iterable[Path]:
    return (p for p in root.rglob("*") if p.is_file() and p.name not in CREDENTIAL_FILES
            and not p.name.endswith(".refused"))
