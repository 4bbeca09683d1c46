"""Config merge: the stored config laid over the static one a component registers with.

Rule (documented in ``docs/protocol.md``): objects merge key by key, recursively; anywhere
else the stored value wins outright (lists and scalars are replaced, not concatenated); a
stored ``null`` removes the key. Neither input is modified.
"""

from __future__ import annotations

import copy
from typing import Any


def deep_merge(static: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(static)
    for key, value in stored.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
