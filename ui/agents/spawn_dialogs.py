"""Dialogs that spawn agents with choices: drivers hosting chosen instances, a runner with labels.

The quick buttons of the Agents tab spawn agents with their defaults. These non-modal
dialogs (``show()``, never ``exec()``: no nested event loop) let the operator choose first:

- :class:`DriversDialog`: how many instance drivers, and which fixed instances each one
  hosts, picked from the audio core's model registry (``backend/audio/models.py``), with
  ids that follow the default rack's naming (``driver-3.eq``, ``driver-3.comp``) and can be
  edited. Nothing chosen means the documented default rack (``backend/agents/roles.py``).
  Its result is one ``(name, config)`` per driver; the config becomes the driver's
  ``--config`` file.
- :class:`RunnerDialog`: a local runner and the labels jobs may ask for.

Both only describe what to spawn (``spawn_requested``); the Agents view does the spawning
through the supervisor, so a dialog never touches a process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backend.agents import default_rack
from backend.audio import MODELS
from backend.protocol import NAME_PATTERN

#: A task spec's instance id (backend/audio/spec.py ``Id``).
INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
#: Stands for the driver's name in an id template: ``{name}.eq`` is ``driver-3.eq``.
NAME = "{name}"
MAX_DRIVERS = 8
ID_COLUMN, MODEL_COLUMN = range(2)

#: ``[(driver name, static config or None for the default rack), ...]``
DriverPlan = list[tuple[str, dict[str, Any] | None]]


def rack_suffixes() -> dict[str, str]:
    """Model -> the id suffix the default rack uses for it (``compressor`` -> ``comp``)."""
    suffixes = {model: model for model in MODELS}
    for entry in default_rack(NAME):
        suffixes[str(entry["model"])] = str(entry["id"]).removeprefix(NAME + ".")
    return suffixes


@dataclass
class RackEntry:
    """One fixed instance a driver will host: an id template and a model."""

    template: str
    model: str

    def instance_id(self, driver: str) -> str:
        return self.template.replace(NAME, driver)


def default_entries() -> list[RackEntry]:
    return [RackEntry(str(e["id"]), str(e["model"])) for e in default_rack(NAME)]


def default_rack_text() -> str:
    return ", ".join(f"NAME.{e.template.removeprefix(NAME + '.')} ({e.model})"
                     for e in default_entries())


class DriversDialog(QDialog):
    """How many drivers, and which instances each one hosts."""

    #: A :data:`DriverPlan`: the operator pressed Spawn.
    spawn_requested = QtSignal(object)

    def __init__(self, next_names: Callable[[int], list[str]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Spawn instance drivers")
        self.setModal(False)
        self._next_names = next_names
        self.names: list[str] = []
        #: One rack per driver; with "same instances" only ``racks[0]`` counts.
        self.racks: list[list[RackEntry]] = [[]]
        self._filling = False

        self.count = QSpinBox()
        self.count.setRange(1, MAX_DRIVERS)
        self.count.setValue(1)
        self.count.setToolTip("How many instance drivers to start on this machine")
        self.count.valueChanged.connect(self._on_count)
        self.names_label = QLabel()
        self.names_label.setToolTip("The drivers' component ids at the hub: the first free "
                                    "names; a task spec names a driver by it")
        self.same_rack = QCheckBox("Same instances on every driver")
        self.same_rack.setChecked(True)
        self.same_rack.setToolTip("Checked: every driver hosts the rack below, each under its "
                                  "own name. Unchecked: choose a rack per driver")
        self.same_rack.toggled.connect(self._on_same)
        self.driver_combo = QComboBox()
        self.driver_combo.setToolTip("Whose rack the list on the right shows and edits")
        self.driver_combo.currentIndexChanged.connect(lambda _i: self._show_rack())

        self.models = QListWidget()
        self.models.setObjectName("modelList")
        self.models.setToolTip("Instance models of the audio core; double-click or Add to put "
                               "one in the driver's rack")
        self.models.setWordWrap(True)
        self.models.setSpacing(2)
        self.models.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for name, info in MODELS.items():
            item = QListWidgetItem(f"{name} — {info.description}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{name}: {info.description}")
            self.models.addItem(item)
        self.models.setCurrentRow(0)
        self.models.itemDoubleClicked.connect(lambda item: self.add_model(
            str(item.data(Qt.ItemDataRole.UserRole))))
        self.add_button = QPushButton("Add ▸")
        self.add_button.setToolTip("Add an instance of the selected model to the rack")
        self.add_button.clicked.connect(self._add_selected)

        self.rack = QTableWidget(0, 2)
        self.rack.setObjectName("rackTable")
        self.rack.setHorizontalHeaderLabels(["Instance id", "Model"])
        self.rack.verticalHeader().hide()
        self.rack.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rack.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.rack.setToolTip("The fixed instances this driver hosts; double-click an id to "
                             "rename it (a task spec refers to it by this id)")
        header = self.rack.horizontalHeader()
        header.setSectionResizeMode(ID_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(MODEL_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.rack.setMinimumSize(260, 150)
        self.rack.itemChanged.connect(self._on_item_changed)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected instance out of the rack")
        self.remove_button.clicked.connect(self.remove_selected)
        self.default_button = QPushButton("Default rack")
        self.default_button.setToolTip("Fill the rack with the default: " + default_rack_text())
        self.default_button.clicked.connect(self.use_default_rack)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty the rack (the driver then hosts the default rack)")
        self.clear_button.clicked.connect(self.clear_rack)

        self.hint = QLabel()
        self.hint.setObjectName("rackHint")
        self.hint.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setObjectName("rackProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c62828; font-weight: bold;")

        self.buttons = QDialogButtonBox()
        self.spawn_button = self.buttons.addButton("Spawn",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.spawn_button.setToolTip("Start the drivers with these racks and close")
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setToolTip("Close without spawning anything")
        self.buttons.accepted.connect(self.spawn)
        self.buttons.rejected.connect(self.reject)

        count_row = QHBoxLayout()
        count_row.addWidget(self.count)
        count_row.addWidget(QLabel("named"))
        count_row.addWidget(self.names_label, 1)
        top = QFormLayout()
        top.addRow("Drivers:", count_row)
        driver_row = QHBoxLayout()
        driver_row.addWidget(self.same_rack)
        driver_row.addStretch(1)
        driver_row.addWidget(QLabel("Rack of:"))
        driver_row.addWidget(self.driver_combo)
        models_column = QVBoxLayout()
        models_column.addWidget(QLabel("<b>Models</b>"))
        models_column.addWidget(self.models, 1)
        models_column.addWidget(self.add_button)
        rack_buttons = QHBoxLayout()
        rack_buttons.addWidget(self.remove_button)
        rack_buttons.addWidget(self.clear_button)
        rack_buttons.addStretch(1)
        rack_buttons.addWidget(self.default_button)
        rack_column = QVBoxLayout()
        self.rack_title = QLabel()
        rack_column.addWidget(self.rack_title)
        rack_column.addWidget(self.rack, 1)
        rack_column.addLayout(rack_buttons)
        middle = QHBoxLayout()
        middle.addLayout(models_column, 1)
        middle.addLayout(rack_column, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(driver_row)
        layout.addLayout(middle, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumSize(640, 420)
        self.refresh_names()

    # -- what the operator chose ------------------------------------------------------

    def refresh_names(self) -> None:
        """Take the first free driver names again (another spawn may have used some)."""
        self.names = self._next_names(self.count.value())
        self.names_label.setText(", ".join(self.names))
        while len(self.racks) < len(self.names):
            self.racks.append([RackEntry(e.template, e.model) for e in self.racks[0]])
        del self.racks[len(self.names):]
        current = max(0, self.driver_combo.currentIndex())
        self.driver_combo.blockSignals(True)
        self.driver_combo.clear()
        self.driver_combo.addItems(self.names)
        self.driver_combo.setCurrentIndex(min(current, len(self.names) - 1))
        self.driver_combo.blockSignals(False)
        self._show_rack()

    def current_driver(self) -> int:
        return 0 if self.same_rack.isChecked() else max(0, self.driver_combo.currentIndex())

    def current_rack(self) -> list[RackEntry]:
        return self.racks[self.current_driver()]

    def rack_of(self, driver: int) -> list[RackEntry]:
        return self.racks[0 if self.same_rack.isChecked() else driver]

    def plan(self) -> DriverPlan:
        """Each driver's name and config (None: the driver's own default rack)."""
        plan: DriverPlan = []
        for i, name in enumerate(self.names):
            entries = self.rack_of(i)
            config = None if not entries else {"instances": [
                {"id": e.instance_id(name), "model": e.model, "params": {}} for e in entries]}
            plan.append((name, config))
        return plan

    def check(self) -> str | None:
        """What is wrong with the chosen ids, or None."""
        seen: dict[str, str] = {}
        for i, name in enumerate(self.names):
            for entry in self.rack_of(i):
                iid = entry.instance_id(name)
                if not INSTANCE_ID.match(iid):
                    return (f"{iid!r} is not a valid instance id: use 1-64 letters, digits, "
                            "_ . : - starting with a letter or digit")
                if iid in seen:
                    where = "twice on " + name if seen[iid] == name else \
                        f"on both {seen[iid]} and {name}"
                    return (f"instance id {iid!r} is used {where}; ids must be unique "
                            "(use NAME in the id, e.g. driver-1.eq, or rename one)")
                seen[iid] = name
        return None

    # -- editing ----------------------------------------------------------------------

    def add_model(self, model: str) -> None:
        rack = self.current_rack()
        suffix = rack_suffixes().get(model, model)
        taken = {e.template for e in rack}
        template, n = f"{NAME}.{suffix}", 2
        while template in taken:
            template, n = f"{NAME}.{suffix}{n}", n + 1
        rack.append(RackEntry(template, model))
        self._show_rack()
        self.rack.selectRow(len(rack) - 1)

    def _add_selected(self) -> None:
        item = self.models.currentItem()
        if item is not None:
            self.add_model(str(item.data(Qt.ItemDataRole.UserRole)))

    def remove_selected(self) -> None:
        rows = self.rack.selectionModel().selectedRows()
        if rows:
            del self.current_rack()[rows[0].row()]
            self._show_rack()

    def use_default_rack(self) -> None:
        self.current_rack()[:] = default_entries()
        self._show_rack()

    def clear_rack(self) -> None:
        self.current_rack().clear()
        self._show_rack()

    def set_instance_id(self, row: int, text: str) -> None:
        """Rename an instance as if typed in the table (for the driver shown)."""
        item = self.rack.item(row, ID_COLUMN)
        if item is not None:
            item.setText(text)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != ID_COLUMN:
            return
        rack = self.current_rack()
        name = self.names[self.current_driver()]
        text = item.text().strip()
        # Typed as "driver-3.x": kept as "{name}.x", so every driver gets its own.
        rest = text[len(name):]
        ours = text.startswith(name) and not rest[:1].isalnum()
        rack[item.row()].template = NAME + rest if ours else text
        self._update_status()  # not _show_rack: never replace the item in its own signal

    def _on_count(self, _value: int) -> None:
        self.refresh_names()

    def _on_same(self, same: bool) -> None:
        if not same:  # start every driver from the shared rack
            for i in range(1, len(self.racks)):
                self.racks[i] = [RackEntry(e.template, e.model) for e in self.racks[0]]
        self._show_rack()

    def _show_rack(self) -> None:
        same = self.same_rack.isChecked()
        self.driver_combo.setEnabled(not same and len(self.names) > 1)
        index = self.current_driver()
        name = self.names[index] if self.names else "driver"
        rack = self.racks[index]
        self._filling = True
        selected = self.rack.currentRow()
        self.rack.setRowCount(len(rack))
        for row, entry in enumerate(rack):
            iid = QTableWidgetItem(entry.instance_id(name))
            iid.setToolTip("Double-click to rename; a task spec refers to the instance by "
                           "this id")
            model = QTableWidgetItem(entry.model)
            model.setFlags(model.flags() & ~Qt.ItemFlag.ItemIsEditable)
            model.setToolTip(MODELS[entry.model].description if entry.model in MODELS else "")
            self.rack.setItem(row, ID_COLUMN, iid)
            self.rack.setItem(row, MODEL_COLUMN, model)
        self._filling = False
        if 0 <= selected < len(rack):
            self.rack.selectRow(selected)
        self._update_status()

    def _update_status(self) -> None:
        same = self.same_rack.isChecked()
        name = self.names[self.current_driver()] if self.names else "driver"
        rack = self.current_rack()
        who = "each driver" if same and len(self.names) > 1 else name
        self.rack_title.setText(f"<b>Instances hosted by {who}</b>"
                                + (f" (shown for {name})" if who != name else ""))
        empty = [n for i, n in enumerate(self.names) if not self.rack_of(i)]
        if empty:
            self.hint.setText(
                f"No instances chosen for {', '.join(empty)}: "
                f"{'it hosts' if len(empty) == 1 else 'each hosts'} the default rack "
                f"{default_rack_text()} (NAME is the driver's name).")
        else:
            self.hint.setText("Each instance is a fixed instance a task spec can patch in "
                              "with {\"location\": {\"driver\": NAME}}.")
        self.remove_button.setEnabled(bool(rack))
        self.clear_button.setEnabled(bool(rack))
        problem = self.check()
        self.problem.setText(f"✗ {problem}" if problem else "")
        self.problem.setVisible(problem is not None)
        self.spawn_button.setEnabled(problem is None)

    def spawn(self) -> None:
        before = list(self.names)
        self.refresh_names()
        if self.names != before:
            self.problem.setText("✗ Some names were taken meanwhile; the drivers are now "
                                 f"{', '.join(self.names)}. Check the ids and Spawn again.")
            self.problem.show()
            return
        if self.check() is not None:
            return
        self.spawn_requested.emit(self.plan())
        self.accept()


class RunnerDialog(QDialog):
    """A local runner for the render farm, and the labels jobs can ask for."""

    #: ``(name, labels)``: the operator pressed Spawn.
    spawn_requested = QtSignal(str, object)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Spawn a runner")
        self.setModal(False)
        self.name = name
        self.labels = QLineEdit()
        self.labels.setObjectName("runnerLabels")
        self.labels.setPlaceholderText("e.g. gpu, fast-disk (optional)")
        self.labels.setToolTip("Comma-separated labels; a job that asks for labels only goes "
                               "to runners that have all of them")
        self.labels.textChanged.connect(lambda _t: self._check())
        self.problem = QLabel()
        self.problem.setObjectName("runnerProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c62828; font-weight: bold;")
        note = QLabel(f"Starts <b>{name}</b> on this machine: it enrolls with a one-time "
                      "token, reports its hardware and takes jobs (commands and renders) "
                      "from this hub. Stopping it signs it off; running jobs are never "
                      "killed.")
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.spawn_button = self.buttons.addButton("Spawn",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.spawn_button.setToolTip(f"Start {name} with these labels and close")
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.accepted.connect(self.spawn)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Labels:", self.labels)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        self._check()

    def chosen_labels(self) -> list[str]:
        return [part.strip() for part in self.labels.text().split(",") if part.strip()]

    def _check(self) -> str | None:
        problem = None
        for label in self.chosen_labels():
            if not re.match(NAME_PATTERN, label):
                problem = (f"label {label!r}: use 1-64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
                break
        self.problem.setText(f"✗ {problem}" if problem else "")
        self.problem.setVisible(problem is not None)
        self.spawn_button.setEnabled(problem is None)
        return problem

    def spawn(self) -> None:
        if self._check() is None:
            self.spawn_requested.emit(self.name, self.chosen_labels())
            self.accept()
