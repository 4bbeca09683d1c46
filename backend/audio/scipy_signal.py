"""``scipy.signal``'s filters, loaded on first use.

Importing ``scipy.signal`` costs about 0.85 s here. The hub imports the task spec, whose
parameter models live beside the DSP that uses these filters, yet never filters anything;
deferring the import keeps the hub (and every CLI call) from paying for it. The price is a
dictionary lookup per call, nothing next to filtering a block.
"""

from __future__ import annotations

from typing import Any


def lfilter(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import lfilter as real

    return real(*args, **kwargs)


def firwin(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import firwin as real

    return real(*args, **kwargs)


def resample_poly(*args: Any, **kwargs: Any) -> Any:
    from scipy.signal import resample_poly as real

    return real(*args, **kwargs)
