"""What a client trusts a hub's certificate by: a pin from enrollment, or the system's CAs.

A pinned hub is trusted by *anchors*: the PEM certificates whose fingerprints matched a
pin (kubeadm's discovery-token CA hash, the same idea). :func:`discover` fetches the
certificate a hub presents over a handshake that sends nothing else, compares its
fingerprint with the pins, and returns the :class:`Trust` that verifies exactly that
certificate from then on, with no hostname check (the pin, not a name, is what identifies
the hub). A hub whose certificate chains to a CA this system trusts needs no pin.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from backend.tls.fingerprints import fingerprint

#: How long fetching a certificate may take before the hub counts as unreachable.
DISCOVER_TIMEOUT_S = 10.0


class PinMismatch(Exception):
    """The hub presented a certificate that is not the pinned one (nor CA-trusted)."""

    def __init__(self, url: str, expected: tuple[str, ...], presented: str) -> None:
        self.url, self.expected, self.presented = url, expected, presented
        if not expected:
            super().__init__(
                f"the hub at {url} presents certificate {presented}, which no CA this "
                "system trusts has signed: give its fingerprint with --pin (the enrollment "
                "returns it as `pin`; `controlroom tls show` prints it on the hub's "
                "machine) once you have checked it is the hub's"
            )
            return
        super().__init__(
            f"the hub at {url} presents certificate {presented}, not the pinned "
            f"{' or '.join(expected)}. If its certificate was replaced on purpose, ask its "
            "operator for the new fingerprint (`controlroom tls show` on the hub's machine) "
            "and re-pin (`controlroom tls repin --data-dir DIR PIN` for an agent, or the "
            "new --pin for a console or the CLI). If not, someone may be between you and "
            "the hub: do not connect."
        )


@dataclass(frozen=True)
class Trust:
    """Anchors (pinned certificates, PEM) or, with none, the system's trust store."""

    anchors: tuple[str, ...] = ()

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint(pem) for pem in self.anchors)

    def context(self) -> ssl.SSLContext:
        return _pinned(self.anchors) if self.anchors else _system()


@functools.cache
def _system() -> ssl.SSLContext:
    """The system's CAs with hostname checks, built once per process (20-30 ms each)."""
    return ssl.create_default_context()


@functools.lru_cache(maxsize=32)
def _pinned(anchors: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the pin identifies the hub, whatever name reached it
    context.verify_mode = ssl.CERT_REQUIRED
    # A pinned CA-issued leaf is an anchor by itself, without its chain.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata="\n".join(anchors))
    return context


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in {url!r}")
    return parts.hostname, parts.port or 443


async def presented_certificate(url: str) -> str:
    """The certificate (PEM) the server at ``url`` presents; nothing is sent but a TLS
    handshake, so nothing leaks to a server that turns out to be the wrong one."""
    host, port = _address(url)
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=unverified, server_hostname=host),
        DISCOVER_TIMEOUT_S)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return ssl.DER_cert_to_PEM_cert(der)


async def system_trusts(url: str) -> bool:
    """Whether the certificate at ``url`` chains to a CA this system trusts, for its name."""
    host, port = _address(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_system(), server_hostname=host),
            DISCOVER_TIMEOUT_S)
    except ssl.SSLCertVerificationError:
        return False
    writer.close()
    return True


async def discover(url: str, pins: tuple[str, ...]) -> Trust:
    """The trust for the hub at ``url``: its presented certificate if it matches a pin,
    the system's CAs if they vouch for it, else :class:`PinMismatch`. A plain ``http``
    URL needs none (an empty Trust)."""
    if not url.lower().startswith(("https:", "wss:")):
        return Trust()
    if not pins and await system_trusts(url):
        return Trust()
    pem = await presented_certificate(url)
    if fingerprint(pem) in pins:
        return Trust((pem,))
    if await system_trusts(url):
        return Trust()
    raise PinMismatch(url, pins, fingerprint(pem))
