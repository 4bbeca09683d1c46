"""Every way a call to a hub or node can fail, as one exception tree.

::

    ClientError              any failure; ``message`` is a sentence an operator can act on
     ├── HubUnreachable      nothing answered: refused, reset, timed out, name not found
     ├── HubError            an answer with an error status; ``status`` and ``detail``
     ├── StreamLost          a resumable stream stayed cut longer than its patience
     └── AttachError         the address answers, but not as a hub this client can use
                             (bad URL, wrong token, another API version, not a hub)

Callers that only show the problem catch :class:`ClientError` and print ``message``;
callers that react to a refusal (a form pointing at the field a 422 names, a 409 that
means "already stopped") read ``status`` and ``detail`` of :class:`HubError`. Transport
exceptions of the HTTP library never leave this package, so nobody above it needs to know
which library carries the bytes.
"""

from __future__ import annotations

import json
from typing import Any


class ClientError(Exception):
    """A call failed; ``message`` says why and, where it can, what to do.

    ``status`` is the HTTP status when there was one, 503 when nothing answered (the
    status a proxy would give), and ``detail`` the structured answer when the server sent
    one (a 422's list of ``{"loc", "msg"}``).
    """

    def __init__(self, message: str, status: int = 0, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


class HubUnreachable(ClientError):
    """Nothing answered at ``url`` (connection refused or reset, timeout, DNS)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}; is the hub running and reachable?",
                         503)
        self.url = url
        self.reason = reason


class HubError(ClientError):
    """The hub or a node answered with an error status; ``detail`` is what it said.

    ``message`` is the hub's own sentence when it sent one; otherwise ``what`` and the
    status with the detail as JSON.
    """

    def __init__(self, status: int, detail: Any, what: str = "") -> None:
        if isinstance(detail, str):
            message = detail
        else:
            text = _field_errors(detail) or json.dumps(detail)
            message = f"{what}: {status} {text}" if what else f"{status} {text}"
        super().__init__(message, status, detail)
        self.what = what


def _field_errors(detail: Any) -> str:
    """``body.needs.cpus: Input should be greater than 0; ...`` for a 422's field list."""
    if not isinstance(detail, list) or not all(
            isinstance(e, dict) and "msg" in e for e in detail):
        return ""
    return "; ".join(".".join(str(p) for p in e.get("loc", ())) + f": {e['msg']}"
                     for e in detail)


class StreamLost(ClientError):
    """A followed stream could not be reopened for longer than its patience."""

    def __init__(self, what: str, last_id: int, patience_s: float) -> None:
        super().__init__(f"lost the stream of {what} after event {last_id} and could not "
                         f"reopen it for {patience_s:g} s", 503)
        self.last_id = last_id


class AttachError(ClientError):
    """Attaching to a hub failed before any work: the sentence says what to fix."""
