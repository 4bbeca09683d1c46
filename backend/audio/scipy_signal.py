"""``scipy.signal``'s filters, loaded on first use.

Importing ``scipy.signal`` costs about 0.85 s here. The hub imports the task spec, whose
parameter models live beside the DSP that uses these filters, yet never filters anything;
deferring the import keeps the hub (and every CLI call) from paying for it. The price is a
dictionary lookup per call, nothing next to filtering a block.
"""

from __future__ import annotations

from typing import Any


def preload() -> None:
    """Import now: an agent that will filter pays the 0.85 s at start, not on its first
    block (where it made a driver miss the first insert of a play by most of a second)."""
    import scipy.signal  # noqa: F401


def lfilter(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import lfilter as real

    return real(*args, **kwargs)


def lfilter_state(b: Any, a: Any, x: Any, axis: int, zi: Any) -> tuple[Any, Any]:
    """``lfilter(b, a, x, axis=axis, zi=zi)`` for float64 arrays with ``a[0] == 1``.

    Why: since scipy 1.15 the public ``lfilter`` checks and converts its arguments through
    the array-API layer, 4.7 us per call on the reference machine against 110 us of
    filtering for an 8,192-frame stereo block; a render of 32 tracks with an EQ each makes
    11,264 calls per minute of audio. The C routine underneath takes the same arguments,
    and gives the same bits (tested); if a scipy release renames it, the public function is
    used.
    """
    fast = _linear_filter()
    if fast is not None and x.dtype == zi.dtype == b.dtype == a.dtype == "float64":
        out, zf = fast(b, a, x, axis, zi)
        return out, zf
    out, zf = lfilter(b, a, x, axis=axis, zi=zi)
    return out, zf


def _linear_filter() -> Any:
    global _LINEAR_FILTER
    if _LINEAR_FILTER is False:
        try:
            from scipy.signal import _sigtools

            _LINEAR_FILTER = getattr(_sigtools, "_linear_filter", None)
        except ImportError:
            _LINEAR_FILTER = None
    return _LINEAR_FILTER


_LINEAR_FILTER: Any = False  # not looked up yet


def firwin(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import firwin as real

    return real(*args, **kwargs)


def resample_poly(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import resample_poly as real

    return real(*args, **kwargs)
