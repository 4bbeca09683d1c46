"""The hub's certificate: made at first start, kept in ``<data-dir>/tls``, rotated by
announcing the next one before switching to it.

A hub (or a standalone node) bound beyond loopback serves TLS only. Unless the operator
gives a certificate of a studio or public CA (``--tls-cert``/``--tls-key``), it makes an
ECDSA P-256 key (mode 0600) and a self-signed certificate for every name and address of
this machine; agents trust it by the pin they got at enrollment, not by its names.

Rotation never leaves an agent behind unknowingly: :meth:`Certificates.stage` makes (or,
for a CA-issued certificate, records) the *next* certificate, which the hub announces to
every agent over its authenticated channel; the switch happens at the hub's next start.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.tls.fingerprints import fingerprint

log = logging.getLogger(__name__)

#: Ten years: a pinned self-signed certificate is replaced by rotation, never by expiry,
#: which would cut every agent off at once on a date nobody remembers.
SELF_SIGNED_DAYS = 3650


@dataclass(frozen=True)
class Identity:
    """A certificate the hub serves (or will serve), and how agents recognise it."""

    cert_file: Path
    #: None for an announced CA-issued certificate whose key only the operator holds.
    key_file: Path | None
    pem: str
    fingerprint: str
    self_signed: bool

    @classmethod
    def load(cls, cert_file: Path, key_file: Path | None) -> Identity:
        pem = cert_file.read_text()
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise ValueError(f"{cert_file} is not a PEM certificate: {exc}") from None
        first = cert.public_bytes(serialization.Encoding.PEM).decode()
        return cls(cert_file, key_file, first, fingerprint(first), cert.issuer == cert.subject)


def machine_names(bind_host: str = "") -> list[str]:
    """Every name and address this machine may be reached at (the certificate's SANs), so
    that a browser or curl given the certificate file also accepts it by name."""
    names = ["localhost", socket.gethostname(), socket.getfqdn(), "127.0.0.1", "::1"]
    if bind_host and bind_host not in ("0.0.0.0", "::"):
        names.append(bind_host)
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.append(address.address.split("%")[0])
    return list(dict.fromkeys(n for n in names if n))


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_self_signed(cert_file: Path, key_file: Path, names: list[str]) -> Identity:
    """A new key (written 0600 before any byte of it) and a self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Control Room"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Control Room hub {socket.gethostname()}"[:64]),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little apart
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write(key_file, key_pem, 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Identity.load(cert_file, key_file)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, created with ``mode`` (a key is never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)  # a --tls-cert hub has made no tls/ yet
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def made_by_hub(data_dir: Path) -> str | None:
    """The certificate (PEM) a hub made in its data dir, if it made one: what a client on
    the hub's own machine trusts without a pin (the CLI, tests, benchmarks)."""
    path = data_dir / "tls" / "server.crt"
    return path.read_text() if path.exists() else None


class Certificates:
    """The certificate a hub serves, and the next one it has announced.

    ``<dir>/server.crt`` + ``server.key`` are the hub's own (made at first start), unless the
    operator gives ``cert_file``/``key_file``; ``next.crt`` (+ ``next.key`` when the hub made
    it) is the announced successor, switched to at the next :meth:`start`.
    """

    def __init__(self, directory: Path, cert_file: Path | None = None,
                 key_file: Path | None = None) -> None:
        if (cert_file is None) != (key_file is None):
            raise ValueError("give both --tls-cert and --tls-key, or neither (the hub then "
                             "makes its own self-signed certificate)")
        self.directory = directory
        self.own = cert_file is None
        self._cert_file = cert_file or directory / "server.crt"
        self._key_file = key_file or directory / "server.key"
        self.current: Identity | None = None
        self.next: Identity | None = None
        #: The names and addresses self-made certificates are for (given at :meth:`start`).
        self.names: list[str] = []

    @property
    def next_cert(self) -> Path:
        return self.directory / "next.crt"

    @property
    def next_key(self) -> Path:
        return self.directory / "next.key"

    def start(self, names: list[str]) -> Identity:
        """Switch to an announced certificate, or make the first one; the one to serve."""
        self.names = names
        if self.own and self.next_cert.exists() and self.next_key.exists():
            self.next_key.replace(self._key_file)
            self.next_cert.replace(self._cert_file)
            log.info("switched to the announced certificate")
        if self.own and not (self._cert_file.exists() and self._key_file.exists()):
            self.current = make_self_signed(self._cert_file, self._key_file, names)
            log.info("made a self-signed certificate %s", self.current.cert_file)
        else:
            self.current = Identity.load(self._cert_file, self._key_file)
        self.next = Identity.load(self.next_cert, None) if self.next_cert.exists() else None
        if self.next is not None and self.next.fingerprint == self.current.fingerprint:
            self.next_cert.unlink()  # the operator's own announced certificate is now served
            self.next = None
        return self.current

    def stage(self, certificate_pem: str | None = None) -> Identity:
        """Make (or, given a CA-issued certificate's PEM, record) the next certificate."""
        if certificate_pem is None:
            if not self.own:
                raise ValueError(
                    "this hub serves the certificate given with --tls-cert: announce its "
                    "successor by sending the new certificate (PEM), then restart the hub "
                    "with the new --tls-cert/--tls-key")
            self.next = make_self_signed(self.next_cert, self.next_key, self.names)
        else:
            try:
                x509.load_pem_x509_certificate(certificate_pem.encode())
            except ValueError as exc:
                raise ValueError(f"not a PEM certificate: {exc}") from None
            self.next_key.unlink(missing_ok=True)
            _write(self.next_cert, certificate_pem.encode(), 0o644)
            self.next = Identity.load(self.next_cert, None)
        return self.next
