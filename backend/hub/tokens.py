"""Operator tokens, one-time enrollment tokens and agent secrets.

All are 256-bit random strings from :mod:`secrets`. The hub stores only their SHA-256
(a slow KDF buys nothing for values this long and random) and compares in constant time.
An enrollment token is single use and expires; its checks are pure functions so the rules
are tested without a database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from backend.errors import AuthError
from backend.protocol import closecodes

ENROLLMENT_PREFIX = "cre_"
SECRET_PREFIX = "crs_"
#: The embedded node's token (a linked node makes its own: backend/node/service.py).
NODE_PREFIX = "crn_"
AGENT_ID_PREFIX = "ag_"
DEFAULT_ENROLLMENT_TTL_S = 3600.0


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_agent_id() -> str:
    return AGENT_ID_PREFIX + secrets.token_hex(8)


def digest(token: str) -> str:
    """The form a token is stored in."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Constant-time check of a presented token against its stored digest."""
    return hmac.compare_digest(digest(token), stored_digest)


@dataclass(frozen=True)
class EnrollmentRecord:
    token_digest: str
    kind: str
    expires_at: float
    used_at: float | None


def check_enrollment(record: EnrollmentRecord | None, kind: str, now: float) -> None:
    """Raise :class:`AuthError` saying exactly why an enrollment token is refused."""
    if record is None:
        raise AuthError(closecodes.AUTH_FAILED, "enrollment token unknown")
    if record.used_at is not None:
        raise AuthError(closecodes.AUTH_FAILED, "enrollment token already used")
    if now >= record.expires_at:
        raise AuthError(closecodes.AUTH_FAILED, "enrollment token expired")
    if record.kind != kind:
        raise AuthError(
            closecodes.FORBIDDEN, f"enrollment token is for a {record.kind}, not a {kind}"
        )


def write_secret_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_operator_token(path: Path) -> str:
    """The operator token in ``path``; created (0600) at first start."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = new_token("cro_")
    write_secret_file(path, token + "\n")
    return token
