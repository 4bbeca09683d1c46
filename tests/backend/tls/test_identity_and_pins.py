"""The hub's certificate files and the pins that name them, without a server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from backend.tls import Certificates, PinMismatch, Trust, fingerprint, parse_pin


def test_a_pin_is_read_in_any_form_a_person_pastes() -> None:
    pin = "sha256:" + "ab" * 32
    assert parse_pin(pin) == pin
    assert parse_pin("SHA256:" + ":".join(["AB"] * 32)) == pin  # OpenSSL's form
    assert parse_pin("sha256 Fingerprint=" + ":".join(["ab"] * 32)) == pin
    with pytest.raises(ValueError, match="64 hex digits"):
        parse_pin("sha256:abc")


def test_the_first_start_makes_a_key_only_its_owner_reads(tmp_path: Path) -> None:
    certificates = Certificates(tmp_path / "tls")
    current = certificates.start(["localhost", "127.0.0.1"])
    assert current.self_signed and current.fingerprint == fingerprint(current.pem)
    assert current.key_file is not None
    assert stat.S_IMODE(current.key_file.stat().st_mode) == 0o600
    again = Certificates(tmp_path / "tls").start(["localhost"])  # kept, not remade
    assert again.fingerprint == current.fingerprint


def test_an_announced_certificate_is_served_from_the_next_start(tmp_path: Path) -> None:
    certificates = Certificates(tmp_path / "tls")
    first = certificates.start(["localhost"])
    upcoming = certificates.stage()
    assert upcoming.fingerprint != first.fingerprint
    restarted = Certificates(tmp_path / "tls")
    assert restarted.start(["localhost"]).fingerprint == upcoming.fingerprint
    assert restarted.next is None


def test_a_hub_with_its_own_certificate_announces_a_pem_but_makes_none(
        tmp_path: Path) -> None:
    made = Certificates(tmp_path / "made").start(["localhost"])
    assert made.key_file is not None
    own = Certificates(tmp_path / "tls", made.cert_file, made.key_file)
    own.start(["localhost"])
    assert not own.own
    with pytest.raises(ValueError, match="--tls-cert"):
        own.stage()
    with pytest.raises(ValueError, match="not a PEM certificate"):
        own.stage("hello")
    successor = Certificates(tmp_path / "other").start(["localhost"])
    assert own.stage(successor.pem).fingerprint == successor.fingerprint
    with pytest.raises(ValueError, match="both"):
        Certificates(tmp_path / "x", made.cert_file, None)


def test_a_mismatch_says_what_was_presented_and_what_to_do() -> None:
    presented = "sha256:" + "1" * 64
    refused = str(PinMismatch("wss://hub:8750", ("sha256:" + "0" * 64,), presented))
    assert presented in refused and "tls repin" in refused and "do not connect" in refused
    unpinned = str(PinMismatch("wss://hub:8750", (), presented))
    assert "--pin" in unpinned and presented in unpinned


def test_trust_without_anchors_is_the_systems_and_with_them_only_theirs(
        tmp_path: Path) -> None:
    pem = Certificates(tmp_path / "tls").start(["localhost"]).pem
    assert Trust().context().check_hostname  # the system's CAs, by name
    pinned = Trust((pem,))
    assert not pinned.context().check_hostname  # the pin, not a name
    assert pinned.fingerprints == (fingerprint(pem),)
    assert pinned.context().cert_store_stats()["x509"] == 1  # that certificate alone
