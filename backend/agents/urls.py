"""Turning the ``--hub`` base URL an operator types into the agent channel's address, and
back into the hub's HTTP base."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

AGENT_PATH = "/api/v1/agents"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def agent_channel_url(base: str) -> str:
    """``http://host:8750`` -> ``ws://host:8750/api/v1/agents`` (http(s) and ws(s) alike)."""
    parts = urlsplit(base.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"hub URL {base!r} is not an http(s) or ws(s) base URL, e.g. http://127.0.0.1:8750"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(AGENT_PATH):
        path += AGENT_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def hub_http_base(url: str) -> str:
    """``ws://h:p/api/v1/agents`` or ``http://h:p`` -> ``http://h:p``: the inverse of
    :func:`agent_channel_url`, for what an agent asks its hub over plain HTTP."""
    parts = urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/").removesuffix(AGENT_PATH)
    return urlunsplit((scheme, parts.netloc, path, "", "")).rstrip("/")
