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


def firwin(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import firwin as real

    return real(*args, **kwargs)


def resample_poly(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import resample_poly as real

    return real(*args, **kwargs)
