"""Who may do what: the kinds of caller and what each may reach (pure; no I/O).

Least privilege, by kind:

- **operator**: everything (``admin.token`` and named operator tokens).
- **viewer**: reads, the event stream and the task stream; nothing that changes state.
- **node**: a linked node and its flow workers: reads, audio tasks (a flow reserves,
  renders and releases) and runs on other nodes through the hub; not configs,
  enrollments, tokens, jobs or runners.

Agents do not appear here: their id and secret open the agent channel and the few HTTP
routes named in ``docs/security.md``, each checked where it is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    OPERATOR = "operator"
    VIEWER = "viewer"
    NODE = "node"


class Need(StrEnum):
    """What a route asks of its caller."""

    READ = "read"
    FLOW = "flow"  # what a flow may change: tasks, runs on other nodes
    OPERATE = "operate"


#: The kinds a named token may be created as (nodes get theirs when they link).
NAMED_KINDS = (Kind.OPERATOR, Kind.VIEWER)

_ALLOWED: dict[Kind, frozenset[Need]] = {
    Kind.OPERATOR: frozenset(Need),
    Kind.VIEWER: frozenset({Need.READ}),
    Kind.NODE: frozenset({Need.READ, Need.FLOW}),
}


@dataclass(frozen=True)
class Principal:
    """A caller the hub recognised: its kind and a name (the token's, or the node's)."""

    kind: Kind
    name: str

    def may(self, need: Need) -> bool:
        return need in _ALLOWED[self.kind]


def refusal(principal: Principal, need: Need) -> str:
    """Why ``principal`` may not do what needs ``need``, and what would do."""
    what = "change tasks or runs" if need is Need.FLOW else "change state"
    wanted = "an operator token" if need is Need.OPERATE else "an operator or node token"
    return (f"a {principal.kind} token ({principal.name}) may not {what} here; "
            f"use {wanted}")
