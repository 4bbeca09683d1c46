"""Text for times and durations the views show: how long ago, a timestamp, a round trip."""

from __future__ import annotations

from datetime import datetime


def relative_time(then: float | None, now: float) -> str:
    """``0.4 s ago``, ``12 s ago``, ``5 min ago``: how long ago, at a glance."""
    if then is None:
        return "never"
    age = now - then
    if age < 0.05:
        return "just now"
    if age < 10:
        return f"{age:.1f} s ago"
    if age < 60:
        return f"{age:.0f} s ago"
    if age < 3600:
        return f"{age // 60:.0f} min ago"
    if age < 86400:
        return f"{age // 3600:.0f} h ago"
    return f"{age // 86400:.0f} d ago"


def format_rtt(rtt_ms: float | None) -> str:
    """Milliseconds with the precision that matters at that size."""
    if rtt_ms is None:
        return "—"
    if rtt_ms < 10:
        return f"{rtt_ms:.2f} ms"
    if rtt_ms < 100:
        return f"{rtt_ms:.1f} ms"
    return f"{rtt_ms:.0f} ms"


def format_timestamp(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
