"""Live parameter controls for every instance of the selected task: turn a knob, hear it.

For each instance in the task's spec (in track order, dynamic and fixed alike) a box holds
one control per parameter, built from the model registry (``ModelInfo.controls()`` in
``backend/audio/models.py``): a slider and a spin box for numbers (with the unit, the
model's own range, and a log slider for frequencies, times and ratios), a check box for
booleans, a drop-down for choices (an EQ band's type). The EQ's bands are a list: each
band has its controls, and bands can be added and removed.

A change is sent as ``PATCH /api/v1/tasks/{id}/instances/{iid}`` through the bridge. A
dragged slider produces hundreds of changes a second; :class:`Coalescer` sends at most one
request per instance at a time and at most one every :data:`SEND_INTERVAL_S` (20 a
second), always with the newest values, so the last position always arrives and nothing
queues up behind a slow hub. A refusal (409: the task is not in a state that takes
parameters; 422: a value the model refuses) is shown under the control that caused it,
and the control returns to the last value the hub accepted.

Controls are enabled only where the hub accepts a patch now: ``patch`` among the
``commands`` of the task's view, which its hub fills from its own guard. The console keeps
no copy of that rule, so it is right against a hub of another version; a hub too old to
list its commands gets no controls rather than requests it may refuse. Instance reports
riding on the task's meters stream (a compressor's gain reduction) are shown next to the
instance's controls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from backend.audio.models import MODELS, ParamControl, ParamList
from backend.client import ClientError
from ui.actions import Actions
from ui.bridge import HubBridge

log = logging.getLogger(__name__)

#: At most one parameter change per instance this often (20 a second) while dragging.
SEND_INTERVAL_S = 0.05
#: Slider resolution: positions from 0 to this.
STEPS = 1000
#: How often the instance reports (gain reduction) are repainted.
REPORT_HZ = 15
LABEL_WIDTH = 70
#: Parameters side by side in an instance's box.
COLUMNS = 2
ERROR_STYLE = "color: #c62828;"

Patch = dict[str, Any]
Runner = Callable[[Coroutine[Any, Any, Any]], object]


class Coalescer:
    """One instance's parameter changes: newest values win, one request at a time, paced.

    ``submit`` merges a change into what is pending. A request starts when none is in
    flight and :data:`SEND_INTERVAL_S` has passed since the last one started; when it ends,
    ``done(patch, error)`` is called and whatever was merged meanwhile goes next. So a
    drag sends at most 20 requests a second, and the final position is always sent last.
    Asyncio only (no Qt): ``run`` starts the request coroutine (the window's
    :class:`~ui.actions.Actions`, which reports anything unexpected).
    """

    def __init__(self, send: Callable[[Patch], Awaitable[None]],
                 done: Callable[[Patch, ClientError | None], None], run: Runner,
                 interval_s: float = SEND_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._done = done
        self._run = run
        self._interval = interval_s
        self._clock = clock
        self.pending: Patch = {}
        self.in_flight: Patch | None = None
        self.sent = 0
        self._last_start = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def busy(self) -> bool:
        """Something is waiting to be sent or on its way."""
        return bool(self.pending) or self.in_flight is not None

    def holds(self, name: str) -> bool:
        return name in self.pending or (self.in_flight is not None and name in self.in_flight)

    def submit(self, params: Patch) -> None:
        self.pending.update(params)
        self._schedule()

    def close(self) -> None:
        """Stop sending (the task or the view went away); a request on its way ends quietly."""
        self._closed = True
        self.pending = {}
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._closed or self.in_flight is not None or self._timer is not None \
                or not self.pending:
            return
        wait = self._last_start + self._interval - self._clock()
        if wait <= 0:
            self._start()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._schedule()

    def _start(self) -> None:
        patch, self.pending = self.pending, {}
        self.in_flight = patch
        self._last_start = self._clock()
        self.sent += 1
        self._run(self._request(patch))

    async def _request(self, patch: Patch) -> None:
        error: ClientError | None = None
        try:
            await self._send(patch)
        except ClientError as exc:
            error = exc
        except Exception as exc:  # shown inline too; Actions also reports and logs it
            error = ClientError(f"{type(exc).__name__}: {exc}", 500)
            raise
        finally:
            self.in_flight = None
            if not self._closed:
                self._done(patch, error)
                self._schedule()


# -- one control ----------------------------------------------------------------------


class NumberEditor(QWidget):
    """A slider and a spin box kept in step; the slider moves on a log scale if asked."""

    #: The operator changed the value (not emitted by :meth:`set_value`).
    edited = QtSignal(object)

    def __init__(self, control: ParamControl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.low = control.minimum if control.minimum is not None else -1e6
        #: The exact value (the spin box shows it rounded to its decimals).
        self._value = float(control.default if control.default is not None else 0.0)
        self.high = control.maximum if control.maximum is not None else 1e6
        self.log = control.log and self.low > 0
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setSingleStep(STEPS // 100)
        self.slider.setPageStep(STEPS // 10)
        self.slider.setMinimumWidth(70)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(self.low, self.high)
        self.spin.setDecimals(control.decimals)
        self.spin.setKeyboardTracking(False)  # typed digits count on Enter or leaving
        self.spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.spin.setAccelerated(True)
        self.spin.setMinimumWidth(92)
        if control.unit:
            self.spin.setSuffix(control.unit if control.unit.startswith(":")
                                else f" {control.unit}")
        self.spin.valueChanged.connect(self._on_spin)
        tip = (f"{control.label}: {control.description}; {self._range_text()}"
               + ("; the slider moves on a log scale" if self.log else ""))
        self.slider.setToolTip(tip)
        self.spin.setToolTip(tip)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)

    def _range_text(self) -> str:
        unit = f" {self.control.unit}" if self.control.unit else ""
        return f"{self.low:g} to {self.high:g}{unit}, default {self.control.default:g}"

    def value(self) -> float | int:
        return int(self._value) if self.control.kind == "integer" else self._value

    def set_value(self, value: Any) -> None:
        self._value = float(value)
        for widget in (self.spin, self.slider):
            widget.blockSignals(True)
        self.spin.setValue(float(value))
        self.slider.setValue(self.position(float(value)))
        for widget in (self.spin, self.slider):
            widget.blockSignals(False)

    def active(self) -> bool:
        """The operator is holding the slider or typing: do not move it under them."""
        return self.slider.isSliderDown() or (self.spin.hasFocus()
                                              and self.spin.lineEdit().isModified())

    def position(self, value: float) -> int:
        value = min(max(value, self.low), self.high)
        if self.log:
            fraction = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            fraction = (value - self.low) / (self.high - self.low)
        return round(fraction * STEPS)

    def value_at(self, position: int) -> float:
        fraction = position / STEPS
        if self.log:
            value = self.low * (self.high / self.low) ** fraction
        else:
            value = self.low + fraction * (self.high - self.low)
        return round(float(min(max(value, self.low), self.high)), self.control.decimals)

    def _on_slider(self, position: int) -> None:
        self._value = self.value_at(position)
        self.spin.blockSignals(True)
        self.spin.setValue(self._value)
        self.spin.blockSignals(False)
        self.edited.emit(self.value())

    def _on_spin(self, value: float) -> None:
        self._value = round(value, self.control.decimals)
        self.slider.blockSignals(True)
        self.slider.setValue(self.position(value))
        self.slider.blockSignals(False)
        self.edited.emit(self.value())


class ParamRow(QWidget):
    """One parameter: its label, its editor, and (under them) why a change was refused."""

    #: ``(name, value)``: the operator changed it.
    edited = QtSignal(str, object)

    def __init__(self, control: ParamControl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.label = QLabel(control.label)
        self.label.setMinimumWidth(LABEL_WIDTH)
        self.label.setToolTip(control.description)
        self.number: NumberEditor | None = None
        self.combo: QComboBox | None = None
        self.check: QCheckBox | None = None
        editor: QWidget
        if control.kind == "choice":
            self.combo = QComboBox()
            for choice in control.choices:
                self.combo.addItem(choice.replace("_", " "), choice)
            self.combo.setToolTip(f"{control.label}: {control.description}")
            self.combo.currentIndexChanged.connect(
                lambda _i: self.edited.emit(self.control.name, self.value()))
            editor = self.combo
        elif control.kind == "boolean":
            self.check = QCheckBox()
            self.check.setToolTip(f"{control.label}: {control.description}")
            self.check.toggled.connect(
                lambda _on: self.edited.emit(self.control.name, self.value()))
            editor = self.check
        else:
            self.number = NumberEditor(control)
            self.number.edited.connect(lambda value: self.edited.emit(self.control.name, value))
            editor = self.number
        self.editor = editor
        self.error = QLabel()
        self.error.setObjectName("paramError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(editor, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addLayout(row)
        layout.addWidget(self.error)

    def value(self) -> Any:
        if self.combo is not None:
            return self.combo.currentData()
        if self.check is not None:
            return self.check.isChecked()
        assert self.number is not None
        return self.number.value()

    def set_value(self, value: Any) -> None:
        if self.combo is not None:
            self.combo.blockSignals(True)
            index = self.combo.findData(value)
            self.combo.setCurrentIndex(max(0, index))
            self.combo.blockSignals(False)
        elif self.check is not None:
            self.check.blockSignals(True)
            self.check.setChecked(bool(value))
            self.check.blockSignals(False)
        elif self.number is not None:
            self.number.set_value(value)

    def active(self) -> bool:
        return self.number is not None and self.number.active()

    def show_error(self, text: str) -> None:
        self.error.setText(f"✗ {text}")
        self.error.show()

    def clear_error(self) -> None:
        self.error.clear()
        self.error.hide()

    def error_text(self) -> str:
        return self.error.text()


# -- one instance ---------------------------------------------------------------------


class InstanceBox(QGroupBox):
    """The controls of one instance, its report, and the pacing of its changes."""

    def __init__(self, task_id: str, iid: str, instance: dict[str, Any], where: str,
                 bridge: HubBridge, run: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_id = task_id
        self.iid = iid
        self.model = str(instance.get("model"))
        self.setObjectName("instanceBox")
        self.setTitle(f"{iid} — {self.model}")
        info = MODELS.get(self.model)
        self.controls = info.controls() if info is not None else ()
        self.accepted: dict[str, Any] = dict(instance.get("params") or {})
        self.rows: dict[str, ParamRow] = {}
        #: For list parameters: one dict of rows per item (an EQ band).
        self.items: dict[str, list[dict[str, ParamRow]]] = {}
        self._last_row: dict[str, ParamRow] = {}
        self._list_layouts: dict[str, QVBoxLayout] = {}
        self.add_buttons: dict[str, QPushButton] = {}
        self.enabled_for_state = True
        self.changes = Coalescer(lambda patch: bridge.set_params(task_id, iid, patch),
                                self._on_done, run)

        self.where = QLabel(where)
        self.where.setStyleSheet("color: #616161;")
        self.where.setWordWrap(True)
        self.report_bar = QProgressBar()
        self.report_bar.setObjectName("gainReduction")
        self.report_bar.setRange(0, 240)  # tenths of a dB, 0..24 dB
        self.report_bar.setTextVisible(True)
        self.report_bar.setFormat("GR 0.0 dB")
        self.report_bar.setMaximumWidth(150)
        self.report_bar.setToolTip("Gain reduction right now, in dB (from the meters stream "
                                   "while the task plays or renders)")
        self.report_bar.hide()
        self.report_label = QLabel()
        self.report_label.setObjectName("instanceReport")
        head = QHBoxLayout()
        head.addWidget(self.where, 1)
        head.addWidget(self.report_label)
        head.addWidget(self.report_bar)
        self.box_error = QLabel()
        self.box_error.setObjectName("instanceError")
        self.box_error.setWordWrap(True)
        self.box_error.setStyleSheet(ERROR_STYLE)
        self.box_error.hide()
        self._layout = QVBoxLayout(self)
        self._layout.setSpacing(3)
        self._layout.addLayout(head)
        grid = _grid()
        for control in self.controls:
            if isinstance(control, ParamList):
                self._build_list(control)
            else:
                row = ParamRow(control)
                row.edited.connect(self._on_edited)
                row.set_value(self.accepted.get(control.name, control.default))
                self.rows[control.name] = row
                _place(grid, row)
        if self.rows:
            self._layout.addLayout(grid)
        self._layout.addWidget(self.box_error)

    # -- lists (EQ bands) -------------------------------------------------------------

    def _build_list(self, spec: ParamList) -> None:
        holder = QVBoxLayout()
        holder.setSpacing(2)
        self._list_layouts[spec.name] = holder
        self.items[spec.name] = []
        self._layout.addLayout(holder)
        add = QPushButton(f"+ Add {spec.label.lower()}")
        add.setToolTip(f"Add a {spec.label.lower()} at its defaults (at most "
                       f"{spec.max_items}); sent at once")
        add.clicked.connect(lambda: self.add_item(spec.name))
        self.add_buttons[spec.name] = add
        row = QHBoxLayout()
        row.addWidget(add)
        row.addStretch(1)
        self._layout.addLayout(row)
        self._fill_list(spec.name, list(self.accepted.get(spec.name) or []))

    def _list_spec(self, name: str) -> ParamList:
        for control in self.controls:
            if isinstance(control, ParamList) and control.name == name:
                return control
        raise KeyError(name)

    def _fill_list(self, name: str, values: list[dict[str, Any]]) -> None:
        spec = self._list_spec(name)
        holder = self._list_layouts[name]
        while holder.count():
            item = holder.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.items[name] = []
        for index, value in enumerate(values):
            frame = QFrame()
            frame.setObjectName("listItem")
            frame.setFrameShape(QFrame.Shape.StyledPanel)
            inner = QVBoxLayout(frame)
            inner.setContentsMargins(6, 3, 6, 3)
            inner.setSpacing(2)
            title = QHBoxLayout()
            title.addWidget(QLabel(f"<b>{spec.label} {index + 1}</b>"), 1)
            remove = QPushButton("Remove")
            remove.setToolTip(f"Take {spec.label.lower()} {index + 1} out; sent at once")
            remove.clicked.connect(lambda _c=False, i=index: self.remove_item(name, i))
            remove.setEnabled(self.enabled_for_state)
            title.addWidget(remove)
            inner.addLayout(title)
            rows: dict[str, ParamRow] = {}
            grid = _grid()
            for control in spec.item:
                row = ParamRow(control)
                row.set_value(value.get(control.name, control.default))
                row.edited.connect(lambda _n, _v, r=row: self._on_item_edited(name, r))
                row.editor.setEnabled(self.enabled_for_state)
                rows[control.name] = row
                _place(grid, row)
            inner.addLayout(grid)
            self.items[name].append(rows)
            holder.addWidget(frame)
        if not values:
            empty = QLabel(f"No {spec.label.lower()}s: the signal passes unchanged.")
            empty.setStyleSheet("color: palette(mid);")
            holder.addWidget(empty)
        self.add_buttons[name].setEnabled(
            self.enabled_for_state and (spec.max_items is None or len(values) < spec.max_items))

    def list_value(self, name: str) -> list[dict[str, Any]]:
        return [{key: row.value() for key, row in item.items()} for item in self.items[name]]

    def add_item(self, name: str) -> None:
        values = [*self.list_value(name), self._list_spec(name).new_item()]
        self._fill_list(name, values)
        self._change({name: values}, None)

    def remove_item(self, name: str, index: int) -> None:
        values = self.list_value(name)
        del values[index]
        self._fill_list(name, values)
        self._change({name: values}, None)

    def _on_item_edited(self, name: str, row: ParamRow) -> None:
        self._change({name: self.list_value(name)}, row)

    # -- changes ----------------------------------------------------------------------

    def row(self, name: str) -> ParamRow:
        return self.rows[name]

    def item_row(self, name: str, index: int, field: str) -> ParamRow:
        return self.items[name][index][field]

    def _on_edited(self, name: str, value: Any) -> None:
        self._change({name: value}, self.rows[name])

    def _change(self, patch: Patch, row: ParamRow | None) -> None:
        for name in patch:
            if row is not None:
                self._last_row[name] = row
                row.clear_error()
            else:
                self._last_row.pop(name, None)
        self.box_error.hide()
        self.changes.submit(patch)

    def _on_done(self, patch: Patch, error: ClientError | None) -> None:
        if error is None:
            self.accepted.update(patch)
            return
        message = error.message
        for name in patch:
            row = self._last_row.get(name)
            if row is not None:
                row.show_error(message)
            else:
                self.box_error.setText(f"✗ {message}")
                self.box_error.show()
            if not self.changes.holds(name):  # nothing newer on its way: back to the hub's
                self._show_accepted(name)

    def _show_accepted(self, name: str) -> None:
        if name in self.rows:
            row = self.rows[name]
            if not row.active():
                row.set_value(self.accepted.get(name, row.control.default))
        elif name in self.items:
            self._fill_list(name, list(self.accepted.get(name) or []))

    # -- from the hub -----------------------------------------------------------------

    def update_from(self, params: dict[str, Any]) -> None:
        """The hub's current values; controls the operator is moving are left alone."""
        for name, value in params.items():
            if self.changes.holds(name):
                continue
            self.accepted[name] = value
            if name in self.rows:
                row = self.rows[name]
                if not row.active() and row.value() != value:
                    row.set_value(value)
            elif name in self.items:
                current = self.list_value(name)
                if current != value and not any(r.active() for item in self.items[name]
                                                for r in item.values()):
                    if len(current) == len(value):
                        for rows, item_value in zip(self.items[name], value, strict=True):
                            for key, row in rows.items():
                                row.set_value(item_value.get(key, row.control.default))
                    else:
                        self._fill_list(name, list(value))

    def set_patchable(self, patchable: bool, why: str = "") -> None:
        """Enable the controls, or disable them with ``why`` as their labels' tooltip."""
        self.enabled_for_state = patchable
        why = "" if patchable else why
        for row in self.all_rows():
            row.editor.setEnabled(patchable)
            if why:
                row.label.setToolTip(why)
        for name, button in self.add_buttons.items():
            spec = self._list_spec(name)
            room = spec.max_items is None or len(self.items[name]) < spec.max_items
            button.setEnabled(patchable and room)
        for button in self.findChildren(QPushButton):
            if button not in self.add_buttons.values():
                button.setEnabled(patchable)

    def all_rows(self) -> list[ParamRow]:
        rows = list(self.rows.values())
        for items in self.items.values():
            for item in items:
                rows.extend(item.values())
        return rows

    def set_report(self, report: dict[str, Any] | None) -> None:
        """Show the instance's latest report (the compressor's gain reduction)."""
        if not report:
            return
        reduction = report.get("gain_reduction_db")
        if isinstance(reduction, int | float):
            self.report_bar.show()
            self.report_bar.setValue(round(min(max(float(reduction), 0.0), 24.0) * 10))
            self.report_bar.setFormat(f"GR {float(reduction):.1f} dB")
            peak = report.get("max_gain_reduction_db")
            self.report_label.setText(
                f"max {float(peak):.1f} dB" if isinstance(peak, int | float) else "")
            return
        self.report_label.setText("  ".join(
            f"{k.replace('_', ' ')} {float(v):.2f}" for k, v in report.items()
            if isinstance(v, int | float)))

    def close_sender(self) -> None:
        self.changes.close()


# -- the panel ------------------------------------------------------------------------


class InstanceControls(QWidget):
    """Every instance of the selected task, with live controls; one box per instance."""

    def __init__(self, bridge: HubBridge, actions: Actions,
                 reports: Callable[[], dict[str, Any] | None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
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
        commands = (task or {}).get("commands")
        listed = isinstance(commands, list)  # an older hub's views have no commands
        patchable = isinstance(commands, list) and "patch" in commands
        if listed:
            why = f"The hub takes no parameter changes while the task is {self.state or 'gone'}"
        else:
            why = "This hub does not say when it takes parameter changes (an older version)"
        for box in self.boxes.values():
            box.set_patchable(patchable, why)
        if task is None:
            self.note.setText("Select a task to change its instances' parameters live.")
        elif not shape:
            self.note.setText("This task has no instances.")
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


def _grid() -> QGridLayout:
    grid = QGridLayout()
    grid.setHorizontalSpacing(14)
    grid.setVerticalSpacing(2)
    for column in range(COLUMNS):
        grid.setColumnStretch(column, 1)
    return grid


def _place(grid: QGridLayout, row: ParamRow) -> None:
    """Next free cell, left to right: two parameters side by side save the panel's height."""
    index = grid.count()
    grid.addWidget(row, index // COLUMNS, index % COLUMNS)


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
