"""Shell command lines the console shows for the operator to copy and run elsewhere.

A token is never put on a command line in them: any local user can read a process's
arguments (``ps``), only its owner its environment. So a one-time token is set in
``CONTROLROOM_TOKEN`` for that one command (the shell takes the assignment; the program
never sees it among its arguments), where ``controlroom agent`` and ``controlroom runner
register`` read it. A hub certificate's fingerprint is public and goes on the line
(``--pin``). Shared by the Add a remote agent and Add runner dialogs.
"""

from __future__ import annotations

import shlex

from backend.client import TOKEN_ENV


def with_token(token: str, argv: list[str]) -> str:
    """``CONTROLROOM_TOKEN=TOKEN argv...``: the token in the command's environment only."""
    return f"{TOKEN_ENV}={shlex.quote(token)} {shlex.join(argv)}"
