"""The one client of the hub's HTTP API (and, through it, of every node's).

Everything outside the hub that talks to it goes through here: the console's bridge (for
its embedded hub exactly as for a remote one), the ``task`` and ``runner`` command lines,
flows running children on other nodes, standalone nodes linking to their hub, the
benchmarks and the tests. One module per concept, private; the names below are the
public face:

- :class:`HubClient` (every ``/api/v1`` route) and :class:`NodeClient` (every
  ``/node/v1`` route, direct or through the hub's proxy), :class:`TaskStream` (a task's
  audio and meters WebSocket), :class:`HubInfo`, :class:`RunEvent` (one event of a run);
- the exception tree, rooted at :class:`ClientError` (see :mod:`backend.client._errors`);
- the resumable event follower: :class:`Follower` (the pure core: resume point, backoff,
  repeats skipped) and :func:`follow` (its asyncio adapter over HTTP);
- attaching: :func:`attach` (a checked client), :func:`probe`, :func:`normalize_url`,
  :func:`read_token_file`, :func:`hub_slug`.
"""

from backend.client._attach import (
    CONNECT_TIMEOUT_S,
    TOKEN_ENV,
    attach,
    hub_slug,
    normalize_url,
    probe,
    read_token_file,
    trust_for,
    unreachable_hint,
    wrong_token,
)
from backend.client._errors import (
    AttachError,
    ClientError,
    HubError,
    HubUnreachable,
    StreamLost,
)
from backend.client._follower import Follower, GiveUp, Rebase, Record, Reopen, SseParser
from backend.client._hub import RENDER_FINAL, HubClient
from backend.client._info import HealthInfo, HubInfo
from backend.client._media import file_sha256
from backend.client._node import NodeClient, Verdict
from backend.client._routes import ROUTES
from backend.client._stream import follow
from backend.client._taskstream import TaskStream
from backend.node.fold import RunEvent

__all__ = [
    "CONNECT_TIMEOUT_S",
    "RENDER_FINAL",
    "ROUTES",
    "TOKEN_ENV",
    "AttachError",
    "ClientError",
    "Follower",
    "GiveUp",
    "HealthInfo",
    "HubClient",
    "HubError",
    "HubInfo",
    "HubUnreachable",
    "NodeClient",
    "Rebase",
    "Record",
    "Reopen",
    "RunEvent",
    "SseParser",
    "StreamLost",
    "TaskStream",
    "Verdict",
    "attach",
    "file_sha256",
    "follow",
    "hub_slug",
    "normalize_url",
    "probe",
    "read_token_file",
    "trust_for",
    "unreachable_hint",
    "wrong_token",
]
