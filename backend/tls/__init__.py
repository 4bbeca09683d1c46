"""TLS for the hub and whoever talks to it: the hub's certificate, and the trust a client
puts in it (a pin from enrollment, or a CA the system trusts).

Server side (:mod:`backend.tls.identity`) makes and rotates the certificate; client side
(:mod:`backend.tls.trust`) turns a pin into an SSL context. Neither imports the hub.
"""

from backend.tls.fingerprints import fingerprint, parse_pin
from backend.tls.identity import Certificates, Identity, made_by_hub, make_self_signed
from backend.tls.serving import TlsSettings
from backend.tls.trust import PinMismatch, Trust, discover, presented_certificate

__all__ = [
    "Certificates", "Identity", "PinMismatch", "TlsSettings", "Trust", "discover",
    "fingerprint", "made_by_hub",
    "make_self_signed", "parse_pin", "presented_certificate",
]
