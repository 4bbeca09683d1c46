"""A certificate's SHA-256 fingerprint, the form a pin takes: ``sha256:`` and 64 hex digits.

The hash is over the DER encoding of the whole certificate (what ``openssl x509
-fingerprint -sha256`` prints, with colons), so an operator can check a pin by hand.
"""

from __future__ import annotations

import hashlib
import re
import ssl

PREFIX = "sha256:"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def fingerprint(certificate: str | bytes) -> str:
    """``sha256:<hex>`` of a PEM (str) or DER (bytes) certificate."""
    der = ssl.PEM_cert_to_DER_cert(certificate) if isinstance(certificate, str) else certificate
    return PREFIX + hashlib.sha256(der).hexdigest()


def parse_pin(text: str) -> str:
    """A pin as given by a person (``sha256:AB:CD:…``, OpenSSL's colons, any case) in its
    one stored form; ValueError says what a pin looks like."""
    raw = text.strip().lower()
    raw = raw.removeprefix(PREFIX).removeprefix("sha256 fingerprint=").replace(":", "")
    if not _HEX.match(raw):
        raise ValueError(
            f"{text!r} is not a certificate pin: expected sha256: and 64 hex digits, as "
            "POST /api/v1/enrollments returns (`pin`) or `controlroom tls show` prints"
        )
    return PREFIX + raw
