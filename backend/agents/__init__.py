"""Agents: the session every agent kind runs, its backoff, credentials and roles."""

from backend.agents import credentials
from backend.agents.backoff import Backoff
from backend.agents.roles import AGENT_COMMAND_KINDS, default_rack, static_config
from backend.agents.session import AgentSession, SessionSettings
from backend.agents.urls import agent_channel_url, hub_http_base

__all__ = [
    "AGENT_COMMAND_KINDS",
    "AgentSession",
    "Backoff",
    "SessionSettings",
    "agent_channel_url",
    "credentials",
    "default_rack",
    "hub_http_base",
    "static_config",
]
