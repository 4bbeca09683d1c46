"""The agent channel protocol: message types, codec and close codes (sans I/O)."""

# Importing registers the audio task messages with the codec.
from backend.protocol import (
    closecodes,
    frames,
    jobs,
    tasks,
)
from backend.protocol.messages import (
    AGENT_KINDS,
    MAX_FRAME_BYTES,
    NAME_PATTERN,
    AgentKind,
    ConfigApplied,
    ConfigPush,
    Hello,
    Message,
    Ping,
    Pong,
    Report,
    TlsNext,
    Welcome,
    decode_agent_message,
    decode_hub_message,
    encode,
    register,
)

__all__ = [
    "AGENT_KINDS",
    "MAX_FRAME_BYTES",
    "NAME_PATTERN",
    "AgentKind",
    "ConfigApplied",
    "ConfigPush",
    "Hello",
    "Message",
    "Ping",
    "Pong",
    "Report",
    "TlsNext",
    "Welcome",
    "closecodes",
    "decode_agent_message",
    "decode_hub_message",
    "encode",
    "frames",
    "jobs",
    "register",
    "tasks",
]
