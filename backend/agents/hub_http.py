"""An agent's own HTTP client to its hub, for what does not go over the agent channel.

Runners upload artifacts and engines and runners fetch media over plain HTTP (a stream to
or from disk, idempotent, resumable by repeating it). The hub accepts these from an agent
by the same credentials as its channel (headers ``X-Agent-Id`` and ``X-Agent-Secret``
from ``credentials.json``) and the client trusts the hub by the same pinned certificates
as the channel, so one function builds it for every agent kind.
"""

from __future__ import annotations

from backend.agents import credentials
from backend.agents.session import AgentSession
from backend.agents.urls import hub_http_base
from backend.client import HubClient

__all__ = ["agent_hub_client"]


def agent_hub_client(session: AgentSession, timeout: float = 60.0) -> HubClient:
    """A :class:`HubClient` that speaks as this agent (use it with ``async with``).

    An agent not enrolled yet has no credentials; its requests then go without them and
    the hub answers 401, which the caller reports like any other refusal.
    """
    creds = credentials.load(session.settings.data_dir)
    headers = {"X-Agent-Id": creds.agent_id if creds else "",
               "X-Agent-Secret": creds.secret if creds else ""}
    return HubClient(hub_http_base(session.settings.hub_url), timeout=timeout,
                     headers=headers, trust=session.trust)
