"""``controlroom agent node``: a standalone node service joined to a hub."""

from __future__ import annotations

import argparse
import asyncio
import logging

from app.signals import stop_on_signals
from backend.agents import SessionSettings
from backend.errors import AgentFatal
from backend.node import NodeAgent, NodeAgentSettings
from backend.tls import TlsSettings

log = logging.getLogger(__name__)


async def serve(settings: NodeAgentSettings) -> int:
    agent = NodeAgent(settings)
    try:
        await agent.start()
    except OSError as exc:
        log.error("%s", exc)
        return 1
    stopping = stop_on_signals(agent.stop, f"node {settings.session.name}")
    code = 0
    try:
        await agent.run()
    except AgentFatal as exc:
        log.error("%s", exc)
        code = 2
    finally:
        if stopping:
            await asyncio.gather(*stopping)
        await agent.close()
    return code


def run(session: SessionSettings, args: argparse.Namespace) -> int:
    settings = NodeAgentSettings(
        session=session, host=args.node_host, port=args.node_port,
        flows=list(args.node_flows), advertise_url=args.node_url,
        tls=TlsSettings(args.node_tls, args.node_tls_cert, args.node_tls_key),
    )
    return asyncio.run(serve(settings))
