"""What a component hosts, read from its dict: a driver's fixed instances (declared in its
config, as its last report has them) and the components a joined hub reports as its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def instances_of(component: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A driver's fixed instances by id: declared in its config, as its report has them.

    Each is ``{"id", "model", "params", "report", "loaded"}``; ``loaded`` is False for one
    the driver's last report does not list (its model failed to load there), None while
    the driver has not reported at all.
    """
    config = component.get("config") or {}
    declared = config.get("instances") if isinstance(config, dict) else None
    report = component.get("report") or {}
    reported_list = report.get("instances") if isinstance(report, dict) else None
    reported = {str(i["id"]): i for i in reported_list or []
                if isinstance(i, dict) and "id" in i}
    out: dict[str, dict[str, Any]] = {}
    for entry in declared if isinstance(declared, list) else []:
        if not isinstance(entry, dict) or "id" not in entry:
            continue
        iid = str(entry["id"])
        live = reported.get(iid)
        out[iid] = {
            "id": iid,
            "model": str((live or entry).get("model", "")),
            "params": (live or entry).get("params") or {},
            "report": (live or {}).get("report"),
            "loaded": None if reported_list is None else live is not None,
        }
    for iid, live in reported.items():  # hosted but no longer declared (until reconfigured)
        out.setdefault(iid, {"id": iid, "model": str(live.get("model", "")),
                             "params": live.get("params") or {},
                             "report": live.get("report"), "loaded": True})
    return out


def reported_components(component: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The components a hub that joined this one reports as its own, by id."""
    report = component.get("report") or {}
    listed = report.get("components") if isinstance(report, dict) else None
    return {str(c["id"]): dict(c) for c in listed or [] if isinstance(c, dict) and "id" in c}
