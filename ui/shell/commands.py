"""The shell commands the console offers to copy: enrolling an agent with the hub's operator
token, and starting one against the hub.

No token is ever on a command line in them: any local user can read a process's arguments
(``ps``), only its owner its environment. The operator token reaches curl as a header on
its standard input (``printf`` is a shell builtin, so it is no process's argument either),
and the agent's one-time token goes in ``CONTROLROOM_TOKEN``, set for that one command
(:func:`ui.core.shell.with_token`). The hub's certificate fingerprint is public and goes
on the command line (``--pin``).
"""

from __future__ import annotations

import shlex

from ui.core.shell import with_token


def enrollment_command(base_url: str, token_path: str, kind: str = "engine") -> str:
    """The shell command that asks the hub for a one-time enrollment token."""
    return (
        f"printf 'Authorization: Bearer %s\\n' \"$(cat {shlex.quote(token_path)})\" |\n"
        "  curl -s -X POST -H @- \\\n"
        f"  -H 'content-type: application/json' -d '{{\"kind\": \"{kind}\"}}' \\\n"
        f"  {base_url}/api/v1/enrollments"
    )


def agent_command(base_url: str, kind: str = "engine", name: str = "engine-1",
                  pin: str = "", token: str = "TOKEN") -> str:
    """The shell command that starts an agent with the token from the enrollment; with
    ``--pin`` when the hub serves TLS (its certificate's fingerprint)."""
    argv = ["controlroom", "agent", kind, "--hub", base_url, "--name", name]
    if pin:
        argv += ["--pin", pin]
    return with_token(token, argv)
