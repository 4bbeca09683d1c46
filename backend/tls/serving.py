"""When a server (the hub, a standalone node) speaks TLS, and with which certificate.

The rule is the same for both: TLS whenever it listens beyond loopback, or when asked
(``--tls on``), or when given a certificate; then the certificate is the operator's or one
it makes in its data dir (:class:`~backend.tls.identity.Certificates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backend.loopback import is_loopback
from backend.tls.identity import Certificates, machine_names


@dataclass(frozen=True)
class TlsSettings:
    #: "auto": HTTPS and WSS whenever listening beyond loopback; "on": on loopback too.
    mode: Literal["auto", "on"] = "auto"
    #: A certificate of a studio or public CA and its key; else the server makes its own.
    cert: Path | None = None
    key: Path | None = None

    def serves(self, host: str) -> bool:
        return self.mode == "on" or self.cert is not None or not is_loopback(host)

    def certificates(self, directory: Path, host: str) -> Certificates | None:
        """The started certificates to serve on ``host`` (made in ``directory`` at first
        start), or None for plain HTTP on loopback."""
        if not self.serves(host):
            return None
        certificates = Certificates(directory, self.cert, self.key)
        certificates.start(machine_names(host))
        return certificates
