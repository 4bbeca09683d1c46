"""TLS beyond loopback: HTTPS and WSS only, agents pin the hub's certificate at enrollment,
refuse any other, and follow an announced rotation across a hub restart."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from app_routes import OWN_CREDENTIALS, concrete, served_by_node, ws_refused
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from node_processes import NodeProcess, Runs
from processes import QTBLOCK, ROOT, AgentProcess, HubProcess, child_env, wait_until

from backend.client import AttachError, probe
from backend.tls import fingerprint

WRONG_PIN = "sha256:" + "0" * 64


def enrollment(hub: HubProcess, kind: str) -> dict[str, str]:
    r = hub.client.post(f"{hub.url}/api/v1/enrollments", json={"kind": kind})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def controlroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, QTBLOCK, "-m", "app.main", *args], cwd=ROOT,
                          env=child_env(), capture_output=True, text=True, timeout=60)


def test_beyond_loopback_the_hub_speaks_only_tls_and_every_agent_kind_pins_it(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
) -> None:
    hub = start_hub("--host", "0.0.0.0")
    assert hub.url.startswith("https://")
    key = hub.data_dir / "tls" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Plain HTTP gets no answer at all: the socket speaks TLS only.
    with pytest.raises(httpx.TransportError):
        httpx.get(hub.url.replace("https:", "http:") + "/api/v1/health", timeout=5)
    # Health, the one open route, says liveness and version and nothing else.
    health = hub.client.get(f"{hub.url}/api/v1/health", headers={"Authorization": ""})
    assert health.json().keys() == {"status", "version"}

    offered = enrollment(hub, "engine")
    assert offered["pin"] == hub.pin == fingerprint(hub.certificate)
    assert hub.client.get(f"{hub.url}/api/v1/tls").json()["fingerprint"] == hub.pin
    agents = [spawn_agent(hub, "e1", "engine", offered["token"], "--pin", hub.pin)]
    for kind in ("driver", "runner"):
        agents.append(spawn_agent(hub, f"{kind[0]}1", kind, enrollment(hub, kind)["token"],
                                  "--pin", hub.pin))
    for agent in agents:
        hub.wait_state(agent.name, "up")
        saved = json.loads((agent.data_dir / "credentials.json").read_text())
        assert [fingerprint(pem) for pem in saved["anchors"]] == [hub.pin]
    # Later starts need no pin: the certificate is kept with the credentials.
    agents[0].stop()
    hub.wait_state("e1", "down")
    again = spawn_agent(hub, "e1", "engine", None)
    hub.wait_state("e1", "up")
    assert "--pin" not in again.proc.args  # type: ignore[operator]


def test_an_agent_refuses_a_hub_that_is_not_the_pinned_one_and_says_why(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
) -> None:
    hub = start_hub("--tls", "on")
    token = enrollment(hub, "engine")["token"]
    wrong = spawn_agent(hub, "e1", "engine", token, "--pin", WRONG_PIN)
    assert wrong.wait() == 2
    said = wrong.output()
    assert f"presents certificate {hub.pin}, not the pinned {WRONG_PIN}" in said
    assert "controlroom tls repin" in said and "do not connect" in said
    # Nothing was sent: the token is still unused, and works with the right pin.
    unpinned = spawn_agent(hub, "e1", "engine", token)
    assert unpinned.wait() == 2
    assert "no CA this system trusts has signed" in unpinned.output()
    assert "--pin" in unpinned.output()
    spawn_agent(hub, "e1", "engine", token, "--pin", hub.pin)
    hub.wait_state("e1", "up")
    # The refusal reaches the operator once the agent gets through.
    seen = [e["data"] for e in hub.events() if e["event"] == "agent.pin_mismatch"]
    assert len(seen) == 1 and seen[0]["subject"] == "e1"
    assert seen[0]["data"]["presented"] == hub.pin
    assert seen[0]["data"]["expected"] == [WRONG_PIN]


def test_a_hub_keeps_its_agents_across_an_announced_certificate_rotation(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
) -> None:
    hub = start_hub("--tls", "on")
    old_pin = hub.pin
    engine = spawn_agent(hub, "e1", "engine", enrollment(hub, "engine")["token"],
                         "--pin", hub.pin)
    offline = spawn_agent(hub, "d1", "driver", enrollment(hub, "driver")["token"],
                          "--pin", hub.pin)
    hub.wait_state("e1", "up")
    hub.wait_state("d1", "up")
    offline.stop()  # away while the certificate changes
    hub.wait_state("d1", "down")

    announced = hub.client.post(f"{hub.url}/api/v1/tls/next").json()
    assert announced["told"] == ["e1"]
    new_pin = announced["fingerprint"]
    assert hub.client.get(f"{hub.url}/api/v1/tls").json()["next"] == {"fingerprint": new_pin}
    wait_until(lambda: len(json.loads(
        (engine.data_dir / "credentials.json").read_text())["anchors"]) == 2, 10,
        "the engine to trust the announced certificate")

    hub.stop()
    hub.start()  # same port; switches to the announced certificate
    assert hub.pin == new_pin != old_pin
    assert controlroom("tls", "show", "--data-dir", str(hub.data_dir)).stdout.split() == \
        ["serving:", new_pin]
    hub.wait_state("e1", "up", timeout=20)  # reconnected on its own, not re-enrolled
    assert [fingerprint(p) for p in json.loads(
        (engine.data_dir / "credentials.json").read_text())["anchors"]] == [new_pin]

    stale = spawn_agent(hub, "d1", "driver", None)
    assert stale.wait() == 2
    assert f"presents certificate {new_pin}, not the pinned {old_pin}" in stale.output()
    repinned = controlroom("tls", "repin", "--data-dir", str(stale.data_dir), new_pin)
    assert repinned.returncode == 0, repinned.stderr
    spawn_agent(hub, "d1", "driver", None)
    hub.wait_state("d1", "up")
    assert any(e["event"] == "agent.pin_mismatch" and e["data"]["subject"] == "d1"
               for e in hub.events())


def test_a_console_and_the_cli_reach_a_tls_hub_by_its_pin(
    start_hub: Callable[..., HubProcess],
) -> None:
    hub = start_hub("--tls", "on")
    info = asyncio.run(probe(hub.url, hub.token, pin=hub.pin))
    assert info.pin == hub.pin and info.secure
    with pytest.raises(AttachError, match="not the pinned"):
        asyncio.run(probe(hub.url, hub.token, pin=WRONG_PIN))
    with pytest.raises(AttachError, match="give its fingerprint with --pin"):
        asyncio.run(probe(hub.url, hub.token))
    # On the hub's own machine the CLI trusts the certificate file in the data dir.
    listed = controlroom("task", "--data-dir", str(hub.data_dir), "list")
    assert listed.returncode == 0, listed.stderr
    remote = controlroom("task", "--hub", hub.url, "--token", hub.token, "list")
    assert remote.returncode == 1 and "--pin" in remote.stderr
    pinned = controlroom("task", "--hub", hub.url, "--token", hub.token, "--pin", hub.pin,
                         "list")
    assert pinned.returncode == 0, pinned.stderr


def test_a_standalone_node_serves_tls_and_the_hub_proxies_to_it_by_its_certificate(
    start_hub: Callable[..., HubProcess], tmp_path: Path,
) -> None:
    hub = start_hub("--tls", "on")
    node = NodeProcess(hub, "node-a", tmp_path / "node-a", "--tls", "on").start()
    try:
        assert node.url.startswith("https://")
        with pytest.raises(httpx.TransportError):  # the node speaks TLS only too
            httpx.get(node.url.replace("https:", "http:") + "/node/v1/flows", timeout=5)
        # Health is open and says liveness and version only; every other route (walked
        # from the node's own app) needs the node's token.
        health = node.client.get(f"{node.url}/api/v1/health", headers={"Authorization": ""})
        assert health.json().keys() == {"status", "version"}
        routes = served_by_node(tmp_path / "walk") - OWN_CREDENTIALS
        assert len(routes) >= 8
        wss = node.url.replace("https://", "wss://")
        for method, path in sorted(routes):
            url = concrete(path)
            if method == "WS":
                assert ws_refused(wss + url, {}, node.client_tls), path
                continue
            anonymous = node.client.request(method, node.url + url, headers={"Authorization": ""},
                                            **({"json": {}} if method != "GET" else {}))
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        # Through the hub's proxy (the hub trusts the certificate the node sent over its
        # authenticated channel), a run's worker reaches the node over WSS.
        runs = Runs(hub.client, f"{hub.url}/api/v1/nodes/node-a", hub.auth)
        done = runs.wait(runs.start("hello", {"name": "tls"}), "done")
        assert done["result"] == "Hello, tls!"
    finally:
        node.kill(signal.SIGTERM)
        node.close()


def test_the_agents_a_console_spawns_pin_the_hub_it_is_attached_to(
    start_hub: Callable[..., HubProcess], tmp_path: Path,
) -> None:
    from backend.supervisor import Supervisor

    hub = start_hub("--tls", "on")

    async def enroll(kind: str) -> str:
        return enrollment(hub, kind)["token"]

    async def spawn() -> list[str]:
        supervisor = Supervisor(hub.url, tmp_path / "agents", enroll, pin=hub.pin)
        agent = await supervisor.spawn("engine")
        await asyncio.to_thread(hub.wait_state, agent.name, "up")
        argv = psutil.Process(agent.pid).cmdline()
        await supervisor.stop_all()
        return argv

    argv = asyncio.run(spawn())
    assert "--pin" in argv and hub.pin in argv
    assert not any(a.startswith("cre_") for a in argv)  # the token came by environment
    assert os.environ.get("CONTROLROOM_TOKEN") is None


def test_a_studio_hub_joins_a_tls_cloud_hub_by_its_pin(
    start_hub: Callable[..., HubProcess],
) -> None:
    cloud = start_hub("--role", "cloud", "--tls", "on", name="cloud")
    studio = start_hub("--upstream", cloud.url, "--pin", cloud.pin, "--name", "studio-a",
                       "--token", cloud.enroll("hub"), name="studio")
    assert studio.url.startswith("http://")  # itself on loopback, plain
    del studio
    cloud.wait_state("studio-a", "up")


def _ca(directory: Path) -> tuple[Any, Any]:
    """A studio CA: its key and certificate, the certificate written to ca.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _issue(ca: tuple[Any, Any], directory: Path, stem: str) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 signed by ``ca``: (certificate, key) files."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "studio hub")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def test_a_certificate_of_a_trusted_ca_needs_no_pin_and_rotates_by_announcement(
    start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--tls-cert/--tls-key with a studio CA this system trusts (SSL_CERT_FILE): agents
    need no pin; a pinned agent trusts the leaf; the successor is announced as a PEM."""
    ca = _ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # "the system trusts it"
    cert, key = _issue(ca, tmp_path, "hub")
    hub = start_hub("--tls-cert", str(cert), "--tls-key", str(key))
    assert hub.url.startswith("https://") and not (hub.data_dir / "tls" / "server.crt").exists()
    leaf_pin = fingerprint(cert.read_text())
    offered = enrollment(hub, "engine")
    assert offered["pin"] == leaf_pin
    spawn_agent(hub, "e1", "engine", offered["token"])  # no pin: the CA vouches
    pinned = spawn_agent(hub, "d1", "driver", enrollment(hub, "driver")["token"],
                         "--pin", leaf_pin)
    hub.wait_state("e1", "up")
    hub.wait_state("d1", "up")

    new_cert, new_key = _issue(ca, tmp_path, "hub-2026")
    announced = hub.client.post(f"{hub.url}/api/v1/tls/next",
                                json={"certificate": new_cert.read_text()}).json()
    assert announced["fingerprint"] == fingerprint(new_cert.read_text())
    assert announced["told"] == ["d1", "e1"]
    wait_until(lambda: len(json.loads(
        (pinned.data_dir / "credentials.json").read_text())["anchors"]) == 2, 10,
        "the pinned driver to trust the announced leaf")
    no_key = hub.client.post(f"{hub.url}/api/v1/tls/next", json={})
    assert no_key.status_code == 422 and "--tls-cert" in no_key.json()["detail"]

    hub.stop()
    hub.extra = ["--tls-cert", str(new_cert), "--tls-key", str(new_key)]
    hub.start()
    assert hub.client.get(f"{hub.url}/api/v1/tls").json() == {
        "fingerprint": announced["fingerprint"], "self_signed": False, "next": None}
    hub.wait_state("e1", "up", timeout=20)
    hub.wait_state("d1", "up", timeout=20)
