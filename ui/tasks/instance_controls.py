"""Live parameter controls for every instance of the selected task: turn a knob, hear it.

For each instance in the task's spec (in track order, dynamic and fixed alike) a box holds
one control per parameter, built from the model registry (``ModelInfo.controls()`` in
``backend/audio/models.py``): a slider and a spin box for numbers (with the unit, the
model's own range, and a log slider for frequencies, times and ratios), a check box for
booleans, a drop-down for choices (an EQ band's type). The EQ's bands are a list: each
band has its controls, and bands can be added and removed.

A change is sent as ``PATCH /api/v1/tasks/{id}/instances/{iid}`` through the bridge. A
dragged slider produces hundreds of changes a second;
:class:`~ui.tasks.coalescer.Coalescer` sends at most one request per instance at a time
and at most one every :data:`~ui.tasks.coalescer.SEND_INTERVAL_S` (20 a second),
always with the newest values, so the last position always arrives and nothing
queues up behind a slow hub. A refusal (409: the task is not in a state that takes
parameters; 422: a value the model refuses) is shown under the control that caused it,
and the control returns to the last value the hub accepted.

Controls are enabled only where the hub accepts a patch now: ``patch`` among the
``commands`` of the task's view, which its hub fills from its own guard. The console keeps
no copy of that rule, so it is right against a hub of another version; a hub too old to
list its commands gets no controls rather than requests it may refuse. Instance reports
riding on the task's meters stream (a compressor's gain reduction) are shown next to the
instance's controls. On a read-only console (a viewer token) the controls show the
values the hub holds, disabled, with the reason at each label and above them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ui.core.accepts import accepts
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.tasks.instance_box import InstanceBox

#: How often the instance reports (gain reduction) are repainted.
REPORT_HZ = 15


# -- one control ----------------------------------------------------------------------


# -- one instance ---------------------------------------------------------------------


# -- the panel ------------------------------------------------------------------------


class InstanceControls(QWidget):
    """Every instance of the selected task, with live controls; one box per instance."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 reports: Callable[[], dict[str, Any] | None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.access = bridge.access
        self._reports = reports
        self.task_id: str | None = None
        self.state: str | None = None
        self._shape: list[tuple[str, str]] = []
        self.boxes: dict[str, InstanceBox] = {}

        self.heading = QLabel("<b>Instances</b>")
        self.note = QLabel()
        self.note.setObjectName("instancesNote")
        self.note.setWordWrap(True)
        self.inner = QWidget()
        self.inner_layout = QVBoxLayout(self.inner)
        self.inner_layout.setContentsMargins(0, 0, 4, 0)
        self.inner_layout.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("instanceControls")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self.inner)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setMinimumHeight(140)
        top = QHBoxLayout()
        top.addWidget(self.heading)
        top.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.scroll_area, 1)
        self.setMinimumWidth(380)

        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / REPORT_HZ))
        self.timer.timeout.connect(self.show_reports)
        self.show_task(None)

    def box(self, iid: str) -> InstanceBox:
        return self.boxes[iid]

    def show_task(self, task: dict[str, Any] | None) -> None:
        """Show (or update) the controls of ``task``; rebuilt only when its instances change."""
        spec = (task or {}).get("spec") or {}
        instances: dict[str, Any] = spec.get("instances") or {}
        shape = [(iid, str(inst.get("model"))) for iid, inst in _in_track_order(spec)]
        task_id = task["id"] if task else None
        if task_id != self.task_id or shape != self._shape:
            self._rebuild(task_id, spec, shape)
        else:
            for iid, box in self.boxes.items():
                box.update_from(dict(instances.get(iid, {}).get("params") or {}))
        self.state = task["state"] if task else None
        listed = isinstance((task or {}).get("commands"), list)  # not from older hubs
        patchable = self.access.allows(accepts(task, "patch"))
        if self.access.read_only:
            why = self.access.reason
        elif listed:
            why = f"The hub takes no parameter changes while the task is {self.state or 'gone'}"
        else:
            why = "This hub does not say when it takes parameter changes (an older version)"
        for box in self.boxes.values():
            box.set_patchable(patchable, why)
        if task is None:
            self.note.setText("Select a task to change its instances' parameters live.")
        elif not shape:
            self.note.setText("This task has no instances.")
        elif self.access.read_only:
            self.note.setText(f"{self.access.reason}. The values are the hub's, live.")
        elif patchable:
            self.note.setText("Changes are sent as you move a control and heard at once "
                              "while the task plays.")
        elif listed:
            self.note.setText(f"The task is {self.state}: its hub takes no parameter changes "
                              "in this state.")
        else:
            self.note.setText(f"The task is {self.state}; its hub does not list the commands "
                              "it takes (an older version), so parameters are not offered.")
        if self._reports is not None and self.state in ("playing", "rendering"):
            self.timer.start()
        else:
            self.timer.stop()

    def _rebuild(self, task_id: str | None, spec: dict[str, Any],
                 shape: list[tuple[str, str]]) -> None:
        self.close_senders()
        for box in self.boxes.values():
            self.inner_layout.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        self.task_id, self._shape = task_id, shape
        if task_id is None:
            return
        for iid, instance in _in_track_order(spec):
            box = InstanceBox(task_id, iid, instance, _where(spec, iid, instance),
                              self.bridge, self._run)
            self.boxes[iid] = box
            self.inner_layout.insertWidget(self.inner_layout.count() - 1, box)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> object:
        return self.commands.run("Change parameters", coro)

    def show_reports(self) -> None:
        reports = self._reports() if self._reports is not None else None
        if not reports:
            return
        for iid, box in self.boxes.items():
            report = reports.get(iid)
            if isinstance(report, dict):
                box.set_report(report)

    def close_senders(self) -> None:
        for box in self.boxes.values():
            box.close_sender()


def _in_track_order(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Instances as the signal meets them: track by track, each chain in order."""
    instances: dict[str, Any] = spec.get("instances") or {}
    seen: list[str] = []
    for track in spec.get("tracks") or []:
        for iid in track.get("chain") or []:
            if iid in instances and iid not in seen:
                seen.append(iid)
    seen += [iid for iid in instances if iid not in seen]
    return [(iid, dict(instances[iid])) for iid in seen]


def _where(spec: dict[str, Any], iid: str, instance: dict[str, Any]) -> str:
    location = instance.get("location")
    place = (f"fixed, on {location.get('driver')}" if isinstance(location, dict)
             else "dynamic, in the engine")
    tracks = [str(t.get("id")) for t in spec.get("tracks") or [] if iid in (t.get("chain") or [])]
    return place + (f" · track {', '.join(tracks)}" if tracks else "")
