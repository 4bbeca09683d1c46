"""Does a job fit? The one resource check, shared by the hub (placement) and the runner
(accept or refuse), so both give the same answer and the same reason.

Pure: it compares the job's stated ``needs`` with a runner's free resources and labels
and returns ``None`` (fits) or a sentence saying what is short.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The measured needs, with the unit shown in reasons.
QUANTITIES: tuple[tuple[str, str], ...] = (
    ("cpus", "CPUs"), ("memory_mb", "MB memory"), ("disk_mb", "MB disk"), ("gpus", "GPUs"),
)


def own_labels(name: str, labels: Iterable[str]) -> list[str]:
    """A runner's labels as placement sees them: its configured ones, and ``runner.<name>``,
    which it alone carries, so that a job can be pinned to one runner (a part of a farm
    render, an operator's "run it there") with the labels every job already has. The
    ``runner.`` prefix is the placement's own: a configured label using it is ignored, so
    no runner can take another's jobs."""
    return [*(label for label in labels if not label.startswith("runner.")),
            f"runner.{name}"]


def shortfall(needs: Mapping[str, Any], free: Mapping[str, float],
              labels: Iterable[str], word: str = "free") -> str | None:
    """Why ``needs`` do not fit ``free`` and ``labels``, or ``None`` when they do.

    ``word`` names what ``free`` is in the reason (``in all`` for a machine's capacity).
    """
    missing = sorted(set(needs.get("labels") or []) - set(labels))
    if missing:
        return f"lacks label{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    for key, unit in QUANTITIES:
        wanted = float(needs.get(key) or 0)
        have = float(free.get(key, 0.0))
        if wanted > have + 1e-9:
            return f"needs {wanted:g} {unit}, {have:g} {word}"
    return None


def reserve(free: Mapping[str, float], needs: Mapping[str, Any]) -> dict[str, float]:
    """``free`` after a job with ``needs`` has taken its share."""
    left = dict(free)
    for key, _ in QUANTITIES:
        left[key] = float(left.get(key, 0.0)) - float(needs.get(key) or 0)
    return left
