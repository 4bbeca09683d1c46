"""Finding a hub from what an operator types, and checking it before any work.

A console attached to a hub on another machine (``controlroom --hub URL``) first calls
:func:`probe`: one request checks the address, the token and the API version, and each
way that can fail becomes a sentence that says what to do (:class:`AttachError`), because
the person reading it is at a console, not at the hub's machine.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from backend import API_VERSION, __version__
from backend.client._errors import AttachError, HubError, HubUnreachable
from backend.client._hub import HubClient
from backend.client._info import HubInfo
from backend.tls import PinMismatch, Trust, discover

log = logging.getLogger(__name__)

#: The environment variable a token may come in instead of a command-line flag, which any
#: local user could read in the process table.
TOKEN_ENV = "CONTROLROOM_TOKEN"
#: How long the first check of a hub may take before it counts as unreachable.
CONNECT_TIMEOUT_S = 5.0
#: The hub's port when a URL names none.
DEFAULT_PORT = 8750
_WHERE = "(the hub writes it to DATA/hub.url on its machine)"


def normalize_url(url: str) -> str:
    """``http(s)://host:port`` from what an operator may type or paste.

    ``ws(s)://`` (an agent's ``--hub``) becomes ``http(s)://``, a bare ``host:port`` gets
    ``http://``, and a trailing ``/``, ``/api/v1`` or ``/docs`` is dropped.
    """
    text = url.strip()
    if not text:
        raise AttachError(f"the hub's URL is empty; give it as http://HOST:PORT {_WHERE}")
    if "://" not in text:
        text = "http://" + text
    text = re.sub(r"^ws(s?)://", r"http\1://", text)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AttachError(f"{url!r} is not a hub URL; give it as http://HOST:PORT {_WHERE}")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise AttachError(f"{url!r}: the port is not a number") from None
    path = re.sub(r"/(api/v1|docs|openapi\.json)?/*$", "", parts.path)
    return f"{parts.scheme}://{parts.netloc}{path}"


def hub_slug(url: str) -> str:
    """``host-port``: a file-name-safe name for one hub, for per-hub caches and agents."""
    parts = urlsplit(url)
    slug = f"{parts.hostname or 'hub'}-{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", slug)


def read_token_file(path: Path) -> str:
    """The operator token from a file (a copy of the hub's ``admin.token``)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AttachError(f"cannot read the token file {path}: {exc.strerror or exc}; "
                          "copy the hub's DATA/admin.token to this machine") from None
    if not token:
        raise AttachError(f"the token file {path} is empty; it should hold the hub's "
                          "operator token (DATA/admin.token on the hub's machine)")
    return token


def unreachable_hint(url: str, reason: str) -> str:
    """The sentence for a hub that does not answer at all."""
    port = urlsplit(url).port or DEFAULT_PORT
    return (f"cannot reach {url}: {reason}; is the hub running? Start it on its machine "
            f"with: controlroom --headless --host 0.0.0.0 --port {port}")


def wrong_token(url: str, detail: Any) -> str:
    """The sentence for a 401; the hub's own hint is replaced by a fuller one."""
    reason = str(detail).split(":", 1)[0]  # "wrong operator token" / "missing ..."
    return (f"the hub at {url} refused the operator token ({reason}). The token is in "
            "DATA/admin.token on the hub's machine (DATA is its --data-dir); pass it with "
            "--token-file PATH or --token TOKEN")


async def probe(url: str, token: str, *, pin: str = "",
                within_s: float = CONNECT_TIMEOUT_S) -> HubInfo:
    """Check the address, the certificate, the token and the API version; what the hub
    says about itself.

    Raises :class:`AttachError` with the sentence to show.
    """
    client, info = await attach(url, token, pin=pin, within_s=within_s)
    await client.aclose()
    return info


async def trust_for(url: str, pin: str = "") -> Trust:
    """Whom to trust at ``url``: the certificate matching ``pin``, or the system's CAs;
    :class:`AttachError` with the sentence to show if neither vouches for the hub."""
    try:
        return await discover(url, (pin,) if pin else ())
    except PinMismatch as exc:
        raise AttachError(str(exc)) from None
    except (OSError, TimeoutError) as exc:
        raise AttachError(unreachable_hint(url, str(exc) or type(exc).__name__)) from None


async def attach(url: str, token: str, *, pin: str = "", trust: Trust | None = None,
                 within_s: float = CONNECT_TIMEOUT_S) -> tuple[HubClient, HubInfo]:
    """A client of the hub at ``url``, checked as :func:`probe` does (one request), for
    the caller to keep, and what the hub said about itself. ``trust`` (the hub's own
    certificate, in its own process) skips the discovery by ``pin``."""
    url = normalize_url(url)
    if not token:
        raise AttachError(f"no operator token for {url}: pass --token-file PATH (a copy "
                          "of DATA/admin.token from the hub's machine) or --token TOKEN")
    client = HubClient(url, token, trust=trust or await trust_for(url, pin))
    try:
        return client, await _check(client, url, within_s)
    except BaseException:
        await client.aclose()
        raise


async def _check(client: HubClient, url: str, within_s: float) -> HubInfo:
    try:
        info = await client.about(within_s=within_s)
    except HubUnreachable as exc:
        raise AttachError(unreachable_hint(url, exc.reason)) from None
    except HubError as exc:
        if exc.status == 401:
            raise AttachError(wrong_token(url, exc.detail)) from None
        if exc.status == 404:
            await _older_or_foreign(client, url, within_s)
        raise AttachError(f"the hub at {url} answered {exc.status} to GET /api/v1/hub: "
                          f"{exc.detail}") from None
    except (ValueError, KeyError, TypeError, httpx.DecodingError) as exc:
        raise AttachError(f"{url} answered GET /api/v1/hub with something that is not "
                          f"a Control Room hub's description ({exc}); is the URL right?"
                          ) from None
    if info.api != API_VERSION:
        raise AttachError(
            f"the hub at {url} speaks API v{info.api} (Control Room {info.version}); this "
            f"console speaks v{API_VERSION} (Control Room {__version__}). Run the same "
            "version of Control Room on both machines")
    if info.version != __version__:
        log.warning("the hub at %s runs Control Room %s, this console %s", url, info.version,
                    __version__)
    return info


async def _older_or_foreign(client: HubClient, url: str, within_s: float) -> None:
    """No ``GET /api/v1/hub``: an older hub (say so) or not a hub at all (say that)."""
    try:
        health = await client.health(within_s=within_s)
        version = health["version"] if health.get("status") == "ok" else None
    except (HubError, HubUnreachable, ValueError, KeyError, AttributeError):
        version = None
    if version is None:
        raise AttachError(f"{url} is not a Control Room hub (no /api/v1/health); check "
                          f"the address and port {_WHERE}")
    raise AttachError(f"the hub at {url} runs Control Room {version}, too old for a "
                      f"remote console (no GET /api/v1/hub); this console is {__version__}. "
                      "Update the hub's machine to the same version")
