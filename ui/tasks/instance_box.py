"""One instance's box of parameter controls (an EQ's bands as a list that grows and shrinks),
sending changes through a coalescer and showing the reports the instance rides on the meters
stream.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backend.audio import MODELS, ParamList
from backend.client import ClientError
from ui.core.bridge import HubBridge
from ui.tasks.coalescer import Coalescer, Patch, Schedule
from ui.tasks.param_row import ERROR_STYLE, ParamRow

#: Parameters side by side in an instance's box.
COLUMNS = 2


class InstanceBox(QGroupBox):
    """The controls of one instance, its report, and the pacing of its changes."""

    def __init__(self, task_id: str, iid: str, instance: dict[str, Any], where: str,
                 bridge: HubBridge, run: Schedule, parent: QWidget | None = None) -> None:
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
