"""The runners table: each runner's health, phase, labels, hardware, load and jobs.

Rows are the dicts ``GET /api/v1/runners`` returns (docs/runners.md). The hardware
inventory is the runner's own report (``backend/runner/inventory.py``: ``cpu``,
``memory``, ``gpus``, ``os``, ``work_disk``); this model boils it down to one line an
operator can compare across machines, and keeps the detail for the tooltip.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt

from ui.core import health_style
from ui.core.formatting import format_timestamp, relative_time
from ui.core.table_model import RecordsTableModel

RUNNER, HEALTH, PHASE, LABELS, HARDWARE, LOAD, JOBS, HEARTBEAT = range(8)
HEADERS = ("Runner", "Health", "Phase", "Labels", "Hardware", "Load", "Jobs",
           "Last heartbeat")
_Index = QModelIndex | QPersistentModelIndex

#: What each phase means, in the words the operator reads in the tooltip.
PHASES = {
    "starting": "starting: collecting and sending its hardware inventory",
    "ready": "ready: taking jobs that fit its free resources and labels",
    "shutdown": "signed off: stopped on purpose; jobs it was running keep running",
    "away": "away: its connection dropped; it reconnects on its own",
    "revoked": "revoked: its credentials are refused; enroll the machine again to use it",
}


def _gb(mb: Any) -> str:
    gb = float(mb or 0) / 1024
    return f"{gb:.0f} GB" if gb >= 10 else f"{gb:.1f} GB"


def hardware_summary(hardware: Mapping[str, Any]) -> str:
    """``8 CPUs · 15.5 GB RAM · no GPU``: what a runner can take, at a glance."""
    if not hardware:
        return "not reported yet"
    cpu = hardware.get("cpu") or {}
    threads = int(cpu.get("threads") or cpu.get("cores") or 0)
    parts = [f"{threads} CPU{'s' * (threads != 1)}"]
    memory = (hardware.get("memory") or {}).get("total_mb")
    if memory:
        parts.append(f"{_gb(memory)} RAM")
    gpus = list(hardware.get("gpus") or [])
    parts.append(f"{len(gpus)} GPU{'s' * (len(gpus) != 1)}" if gpus else "no GPU")
    return " · ".join(parts)


def hardware_details(runner: Mapping[str, Any]) -> str:
    """Everything the inventory and the last heartbeat say, one fact per line."""
    hardware = runner.get("hardware") or {}
    if not hardware:
        return "The runner has not sent its hardware inventory yet."
    cpu = hardware.get("cpu") or {}
    lines = [f"CPU: {cpu.get('model') or 'unknown model'}, {cpu.get('cores', '?')} cores, "
             f"{cpu.get('threads', '?')} threads"]
    memory = (hardware.get("memory") or {}).get("total_mb")
    if memory:
        lines.append(f"Memory: {_gb(memory)} ({int(memory)} MB)")
    gpus = list(hardware.get("gpus") or [])
    lines.append("GPUs: " + (", ".join(f"{g.get('name')} ({_gb(g.get('memory_mb'))})"
                                        for g in gpus) if gpus else "none found"))
    system = hardware.get("os") or {}
    if system:
        lines.append(f"OS: {system.get('system', '')} {system.get('release', '')} "
                     f"{system.get('machine', '')}, Python {system.get('python', '?')}")
    work = hardware.get("work_disk") or {}
    if work:
        lines.append(f"Work disk: {work.get('path')} ({_gb(work.get('total_mb'))})")
    free = runner.get("free") or {}
    if free:
        lines.append(f"Free now: {float(free.get('cpus', 0)):g} CPUs, "
                     f"{float(free.get('memory_mb', 0)):.0f} MB memory, "
                     f"{float(free.get('disk_mb', 0)) / 1024:.0f} GB disk, "
                     f"{float(free.get('gpus', 0)):g} GPUs")
    return "\n".join(lines)


def load_text(runner: Mapping[str, Any]) -> str:
    """``0.42 (5 %)``: the 1-minute load average and its share of the CPU threads."""
    load = list(runner.get("load") or [])
    if not load:
        return "—"
    threads = int(((runner.get("hardware") or {}).get("cpu") or {}).get("threads") or 0)
    share = f" ({float(load[0]) / threads * 100:.0f} %)" if threads else ""
    return f"{float(load[0]):.2f}{share}"


def jobs_text(runner: Mapping[str, Any]) -> str:
    jobs = list(runner.get("jobs") or [])
    return f"{len(jobs)} running" if jobs else "idle"


class RunnersModel(RecordsTableModel):
    """One row per runner, in the hub's order (by name)."""

    headers = HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._now = time.time()

    def set_runners(self, runners: list[dict[str, Any]]) -> None:
        self._now = time.time()
        self.set_records(runners)

    def refreshed(self) -> None:
        self.tick()

    def tick(self) -> None:
        """Repaint the relative times (``12 s ago``) without asking the hub."""
        self._now = time.time()
        super().refreshed()

    def runners(self) -> list[dict[str, Any]]:
        return self.records()

    def runner(self, row: int) -> dict[str, Any]:
        return self.record(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        runner = self._records[index.row()]
        column = index.column()
        state = str(runner.get("state", "down"))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(runner, column)
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            return health_style.dot_icon(state)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(runner, column)
        return None

    def _text(self, runner: Mapping[str, Any], column: int) -> str:
        if column == RUNNER:
            return str(runner["id"])
        if column == HEALTH:
            return health_style.label(str(runner.get("state", "down")))
        if column == PHASE:
            phase = str(runner.get("phase", ""))
            return "signed off" if phase == "shutdown" else phase
        if column == LABELS:
            return ", ".join(runner.get("labels") or []) or "—"
        if column == HARDWARE:
            return hardware_summary(runner.get("hardware") or {})
        if column == LOAD:
            return load_text(runner)
        if column == JOBS:
            return jobs_text(runner)
        beat = runner.get("last_heartbeat")
        return relative_time(beat, self._now) if beat is not None else "none yet"

    def _tooltip(self, runner: Mapping[str, Any], column: int) -> str:
        if column == HEALTH:
            return {"up": "up: connected and answering the hub's health checks",
                    "half_open": "half-open: connected, waiting for its first health check",
                    }.get(str(runner.get("state")), "down: not connected to the hub")
        if column == PHASE:
            return PHASES.get(str(runner.get("phase")), str(runner.get("phase")))
        if column == LABELS:
            return "Jobs that need a label run only on runners that have it"
        if column == HARDWARE:
            return hardware_details(runner)
        if column == LOAD:
            load = ", ".join(f"{float(x):.2f}" for x in runner.get("load") or []) or "none yet"
            return (f"Load average over 1, 5 and 15 minutes: {load} (from the last "
                    "heartbeat; % is of its CPU threads)")
        if column == JOBS:
            jobs = list(runner.get("jobs") or [])
            return ("Jobs it has or was offered: " + ", ".join(jobs)) if jobs else \
                "No job on it now"
        if column == HEARTBEAT:
            return (f"{format_timestamp(runner.get('last_heartbeat'))}; a runner reports "
                    "its load and free resources every heartbeat_s (60 s by default)")
        return f"{runner['id']}: {PHASES.get(str(runner.get('phase')), '')}"
