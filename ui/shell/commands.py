"""The shell commands the empty-state help offers to copy: enrolling an agent with the hub's
operator token, and starting one against the hub.
"""

from __future__ import annotations

import shlex


def enrollment_command(base_url: str, token_path: str, kind: str = "engine") -> str:
    """The shell command that asks the hub for a one-time enrollment token."""
    return (
        "curl -s -X POST \\\n"
        f"  -H \"Authorization: Bearer $(cat {shlex.quote(token_path)})\" \\\n"
        f"  -H 'content-type: application/json' -d '{{\"kind\": \"{kind}\"}}' \\\n"
        f"  {base_url}/api/v1/enrollments"
    )


def agent_command(base_url: str, kind: str = "engine", name: str = "engine-1") -> str:
    """The shell command that starts an agent with the token from the enrollment."""
    return f"controlroom agent {kind} --hub {base_url} --name {name} --token TOKEN"
