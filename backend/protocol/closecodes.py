"""WebSocket close codes of the agent channel.

Codes 1000-1015 are RFC 6455's; 4000-4999 are ours. An agent reads the code to decide
between reconnecting (the hub went away, a newer connection replaced it) and giving up
(its credentials were refused: retrying would hammer the hub for nothing).
"""

from __future__ import annotations

NORMAL = 1000  # orderly shutdown of either side
GOING_AWAY = 1001  # the hub is shutting down; reconnect later
MESSAGE_TOO_BIG = 1009  # a frame over the size limit
INTERNAL_ERROR = 1011  # the hub failed handling a message (a bug: its log has it)
TRY_AGAIN_LATER = 1013  # too many failed hellos from this address or credential lately
INVALID_MESSAGE = 4400  # not JSON, wrong fields or wrong types, or out of order
AUTH_FAILED = 4401  # enrollment token unknown, used or expired; wrong secret; unknown id
FORBIDDEN = 4403  # credentials valid but not for this name or kind; revoked
UNKNOWN_TYPE = 4404  # a message type the protocol does not define
HELLO_TIMEOUT = 4408  # no hello within the registration timeout
REPLACED = 4409  # the same component connected again; this older connection is dropped

#: Codes after which an agent stops instead of reconnecting. REPLACED is among them: an
#: agent that *receives* it is alive, so another live process took its name, and two
#: processes fighting over one component would replace each other forever.
FATAL = frozenset({AUTH_FAILED, FORBIDDEN, REPLACED})
