"""Nodes and the hub: registration with the flow catalog, health, proxy, unregistration."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from node_processes import NodeProcess, Runs, kill_workers
from processes import HubProcess, child_env, wait_until

ENTRY_POINT_FLOW = '''
from pydantic import BaseModel
from backend.node import flow

class Inputs(BaseModel):
    n: int

@flow("double", "Double a number (shipped by a package's entry point).", Inputs)
async def double(ctx, inputs):
    return inputs.n * 2
'''


def test_a_node_registers_its_catalog_and_address_and_unregisters_on_shutdown(
    tmp_path: Path,
) -> None:
    hub = HubProcess(tmp_path / "hub").start()
    node = NodeProcess(hub, "node-a", tmp_path / "node-a").start()
    try:
        listed = {n["name"]: n for n in hub.client.get(f"{hub.url}/api/v1/nodes").json()}
        assert set(listed) == {"local", "node-a"}
        assert listed["local"]["embedded"] and listed["local"]["state"] == "up"
        a = listed["node-a"]
        assert (a["url"], a["linked"], a["embedded"]) == (node.url, True, False)
        assert {"hello", "fan-out", "approve-render", "crash"} <= {f["name"] for f in a["flows"]}
        hub.wait_state("node-a", "up")  # health-checked like every component
        assert hub.components()["node-a"]["kind"] == "node"

        # The embedded node answers on the hub's own port and through the proxy.
        for base in (f"{hub.url}/node/v1", f"{hub.url}/api/v1/nodes/local"):
            runs = Runs(hub.client, base, hub.auth)
            assert runs.wait(runs.start("hello", {"name": "local"}), "done")["result"] == \
                "Hello, local!"

        node.kill(signal.SIGTERM)
        assert node.proc is not None and node.proc.returncode == 0
        wait_until(lambda: "node-a" not in
                   {n["name"] for n in hub.client.get(f"{hub.url}/api/v1/nodes").json()},
                   10, "node-a to leave the list")
        hub.wait_state("node-a", "down")
        assert "node.unregistered" in [e["event"] for e in hub.events()]
        gone = hub.client.get(f"{hub.url}/api/v1/nodes/node-a/flows")
        assert gone.status_code == 404

        node.start()  # registers again with its saved credentials
        assert node.listed()["state"] in ("half_open", "up")
        node.kill(signal.SIGKILL)
        hub.wait_state("node-a", "down")
        r = hub.client.get(f"{hub.url}/api/v1/nodes/node-a/flows")
        assert r.status_code == 503 and "down" in r.json()["detail"]
    finally:
        node.close()
        hub.close()
        kill_workers(hub.data_dir / "node")


def test_flows_load_from_the_controlroom_flows_entry_point_group(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "epflows-0.1.dist-info").mkdir(parents=True)
    (site / "epflows.py").write_text(ENTRY_POINT_FLOW)
    (site / "epflows-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: epflows\nVersion: 0.1\n")
    (site / "epflows-0.1.dist-info" / "entry_points.txt").write_text(
        "[controlroom.flows]\ndouble = epflows:double\n")
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    hub = HubProcess(tmp_path / "hub").start()
    node = NodeProcess(hub, "node-ep", tmp_path / "node-ep", env=env).start()
    try:
        assert "double" in {f["name"] for f in node.listed()["flows"]}
        runs = Runs(node.client, f"{node.url}/node/v1", node.auth)
        assert runs.wait(runs.start("double", {"n": 21}), "done")["result"] == 42
    finally:
        node.close()
        hub.close()



