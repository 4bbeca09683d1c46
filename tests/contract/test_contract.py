"""The HTTP contract under schemathesis: every phase (examples, coverage, fuzzing,
stateful) and every check against the hub's and a standalone node's OpenAPI documents,
with a fixed seed, must find nothing. The long run is ``benchmarks/fuzz_api.py``.

Streaming routes (the event streams, a job's followed logs) and the WebSocket routes are
left out: schemathesis reads a whole answer, and a stream does not end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node_processes import NodeProcess
from processes import ROOT, AgentProcess, HubProcess

sys.path.insert(0, str(Path(__file__).parent))  # seeds and hooks live beside this file
from seeds import Seeds, pins, seed

CONFIG = ROOT / "tests" / "contract" / "schemathesis.toml"
SEED = "20261204"
STREAMS = r".*/events$|.*/stream$|.*/logs$"
def fuzz(url: str, token: str, seconds: int, report: Path, seed: str = SEED,
         seeds: Seeds | None = None, ca: Path | None = None,
         ) -> subprocess.CompletedProcess[str]:
    """schemathesis on the document at ``url``, every phase and check, the answers kept as
    a HAR file in ``report``. With ``seeds``, the operations that need state get it (fixed
    parameters appended to the configuration, and the ``hooks`` module); ``ca`` is the
    certificate to trust for an HTTPS hub."""
    config, env = CONFIG, dict(os.environ)
    if seeds is not None:
        report.mkdir(parents=True, exist_ok=True)
        config = report / "schemathesis.toml"
        config.write_text(CONFIG.read_text() + pins(seeds))
        env.update(seeds.environment(url, token, ca),
                   SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=str(CONFIG.parent))
    return subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
         "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--seed", seed, "--max-time", str(seconds), "--exclude-path-regex", STREAMS,
         "--report", "har", "--report-dir", str(report), "--no-color",
         *(["--tls-verify", str(ca)] if ca else [])],
        capture_output=True, text=True, timeout=seconds + 120, cwd=ROOT, env=env)


def without_2xx(report: Path, document: dict[str, Any]) -> set[tuple[str, str]]:
    """The documented operations that no recorded answer reached with a 2xx."""
    operations = []
    for path, item in document["paths"].items():
        pattern = re.escape(path)
        for name in re.findall(r"\{[^}]+\}", path):  # {path} of the proxy takes slashes
            pattern = pattern.replace(re.escape(name), ".+" if name == "{path}" else "[^/]+")
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((method.upper(), path, re.compile(f"^{pattern}$")))
    good: Counter[tuple[str, str]] = Counter()
    (har,) = report.glob("*.json")
    for entry in json.loads(har.read_text())["log"]["entries"]:
        method = entry["request"]["method"]
        path = urllib.parse.unquote(urllib.parse.urlsplit(entry["request"]["url"]).path)
        for candidate, template, pattern in operations:
            if candidate == method and pattern.match(path):
                if 200 <= entry["response"]["status"] < 300:
                    good[(method, template)] += 1
                break
    return {(m, p) for m, p, _ in operations if not good[(m, p)]
            and not re.search(STREAMS, p)}


def test_the_hub_contract_holds_under_every_phase_and_check(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    """Over HTTPS (so the TLS routes answer too), with an engine, a driver, two runners and
    two standalone nodes, and the tasks, jobs and runs the seeded operations need."""
    hub = start_hub("--tls", "on", "--auth-failures", "1000000")  # it fails auth on purpose
    seeds = seed(hub, spawn_agent, tmp_path)
    try:
        run = fuzz(hub.url, hub.token, 60, tmp_path / "report", seeds=seeds,
                   ca=hub.data_dir / "tls" / "server.crt")
        assert run.returncode == 0, run.stdout[-6000:]
        scenarios = re.search(r"Stateful \(in .*?\)\s+Scenarios:\s+(\d+)", run.stdout, re.S)
        assert scenarios and int(scenarios.group(1)) > 0, run.stdout[-3000:]
        document = hub.client.get(f"{hub.url}/openapi.json").json()
        assert without_2xx(tmp_path / "report", document) == set()
        assert hub.client.get(f"{hub.url}/api/v1/health").json()["status"] == "ok"
    finally:
        for node in seeds.processes:
            node.close()


def test_a_standalone_nodes_contract_holds(
    start_hub: Callable[..., HubProcess], tmp_path: Path,
) -> None:
    hub = start_hub()
    node = NodeProcess(hub, "node-a", tmp_path / "node-a").start()
    try:
        run = fuzz(node.url, node.token, 20, tmp_path / "report")
        assert run.returncode == 0, run.stdout[-6000:]
    finally:
        node.close()
