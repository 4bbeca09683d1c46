"""Whether the hub accepts a command for one of its records, as the record itself says.

The hub's task and job views list the ``commands`` their current state allows, computed
from the same table its guards use. The console enables a button only when the command is
listed there, and never from its own idea of the rules: a console facing a hub of another
version then offers exactly what that hub takes. A hub too old to list them gets no
commands from this console, since guessing from the state would offer what it may refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def accepts(record: Mapping[str, Any] | None, command: str) -> bool:
    """True if ``record`` (a task or job as the hub shows it) lists ``command``."""
    if record is None:
        return False
    commands = record.get("commands")
    return isinstance(commands, list) and command in commands
