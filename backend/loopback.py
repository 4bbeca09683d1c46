"""Whether an address stays on this machine: where plain HTTP and a plain insert link are
allowed, and beyond which everything is encrypted."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """A listening address (``127.0.0.1``, ``::1``, ``localhost``) reachable from this
    machine only; any other address or name counts as the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolves_to_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is loopback (a peer to connect to)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)
