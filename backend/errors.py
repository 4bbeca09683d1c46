"""The one exception tree of the backend.

    ControlRoomError
    ├── ProtocolViolation   a peer sent something the agent protocol does not allow;
    │                       carries the WebSocket close code and a reason to send back
    ├── AuthError           enrollment token or agent credentials refused (which and why)
    ├── AgentFatal          an agent cannot go on (e.g. refused credentials); retrying is pointless
    ├── RequestRefused      a service cannot carry out a request; carries the HTTP status
    │                       (TaskError for audio tasks, JobError for jobs)
    └── AudioError          the audio core (backend/audio/errors.py): ParamError (bad or unknown
                            instance parameters; UnknownModelError), SourceError (a source file
                            that cannot be used), BlockError, InstanceError (an instance failed
                            on a block, naming which)

Callers catch the subclass they can act on; the messages are written for an operator,
saying what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = ["AgentFatal", "AuthError", "ControlRoomError", "ProtocolViolation", "RequestRefused"]


class ControlRoomError(Exception):
    """Base of every error the backend raises on purpose."""


class ProtocolViolation(ControlRoomError):
    """A message broke the agent protocol; the connection is closed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class AuthError(ControlRoomError):
    """Credentials refused; ``reason`` names which check failed."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class AgentFatal(ControlRoomError):
    """The agent must stop: the hub refused it for a reason a retry cannot change."""


class RequestRefused(ControlRoomError):
    """A request a service cannot carry out; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
