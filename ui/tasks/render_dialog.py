"""The "Render task" dialog: the file's format, and where it renders — this task's engine,
or the render farm (how many runners, or which).

Opened by the task panel's Render button with the runners the hub lists (``GET
/api/v1/runners``); it asks the hub nothing itself. Non-modal to the loop (``open()``,
never ``exec()``: a nested event loop would stall the shared asyncio loop). Accepting it
emits :attr:`RenderDialog.requested` with the body of ``POST
/api/v1/tasks/{id}/render``, which :func:`render_request` builds from the choices, so what
the form means is testable without a window. The hub, not the dialog, decides which
runners take a part (``backend/hub/tasks/farm_plan.py``): the list here only says what
each runner looked like when the dialog opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.core import health_style

Where = Literal["engine", "count", "names"]

#: The render formats, as the operator reads them, and the hub's words for them.
FORMATS: tuple[tuple[str, str], ...] = (("24-bit WAV", "wav24"),
                                        ("32-bit float WAV", "float32"))

NO_RUNNER = "no runner is registered: add one on the Runners tab"

FARM_EXPLAINED = (
    "The mix is cut into chunks of 32 tracks. Each runner renders some chunks, and this "
    "task's engine the ones left; the hub sums the parts into one file, bit-identical "
    "to the engine's own render. A runner that cannot take a part (down, busy, or no "
    "chunk left for it) is skipped, and the render says why; one lost midway has its "
    "chunks rendered again elsewhere.")

NOTE_COLOUR = "#9a6700"  # amber dark enough to read as text


def render_request(fmt: str, where: Where, count: int = 1,
                   names: Sequence[str] = ()) -> dict[str, Any]:
    """The body of ``POST /api/v1/tasks/{id}/render``: ``{"format": fmt, "farm": farm}``.

    ``farm`` is None for the engine alone, ``{"runners": count}`` for the first ``count``
    runners that can take a part, ``{"runners": [names]}`` for those runners.
    """
    farm: dict[str, Any] | None
    if where == "engine":
        farm = None
    elif where == "count":
        if count < 1:
            raise ValueError("ask for at least one runner")
        farm = {"runners": int(count)}
    else:
        chosen = list(dict.fromkeys(str(n) for n in names))
        if not chosen:
            raise ValueError("tick at least one runner")
        farm = {"runners": chosen}
    return {"format": fmt, "farm": farm}


def runner_unavailable(runner: Mapping[str, Any]) -> str | None:
    """Why the runner cannot take a part now, in words; None when it may."""
    if runner.get("revoked"):
        return "revoked: its credentials are refused"
    phase = str(runner.get("phase") or "")
    if phase == "away":
        return "away: its connection dropped; it reconnects on its own"
    if phase == "shutdown":
        return "signed off: it was stopped on purpose"
    if runner.get("state", "down") == "down" or runner.get("connected") is False:
        return "down: not connected to the hub"
    return None


def runner_line(runner: Mapping[str, Any]) -> str:
    """``r1 — up, ready · 3 CPUs free · idle``, or ``r3 — down: not connected to the
    hub``: a runner as a line in the list."""
    why = runner_unavailable(runner)
    if why is not None:
        return f"{runner['id']} — {why}"
    health = health_style.label(str(runner.get("state", "down")))
    phase = str(runner.get("phase") or "")
    text = f"{runner['id']} — {health}" + (f", {phase}" if phase else "")
    cpus = (runner.get("free") or {}).get("cpus")
    if cpus is not None:
        text += f" · {float(cpus):g} CPU{'s' * (float(cpus) != 1)} free"
    jobs = len(runner.get("jobs") or [])
    return text + (f" · {jobs} job{'s' * (jobs != 1)} running" if jobs else " · idle")


class RenderDialog(QDialog):
    """Format and where to render; :meth:`prepare` fills it for a task before it opens."""

    #: ``(task_id, request)``: the operator chose Render; ``request`` is
    #: :func:`render_request`'s body.
    requested = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_id = ""
        self.setMinimumWidth(520)

        self.format = QComboBox()
        for label, value in FORMATS:
            self.format.addItem(label, value)
        self.format.setToolTip("24-bit integer PCM plays everywhere; 32-bit float keeps "
                               "peaks over 0 dBFS unclipped")

        self.engine_choice = QRadioButton("This task's engine")
        self.engine_choice.setToolTip("The engine that holds the task renders the whole mix")
        self.farm_choice = QRadioButton(
            "The render farm: split the mix over runners and the engine")
        self.where = QButtonGroup(self)
        self.where.addButton(self.engine_choice)
        self.where.addButton(self.farm_choice)
        self.engine_choice.setChecked(True)
        self.farm_note = QLabel()
        self.farm_note.setWordWrap(True)
        self.farm_note.setStyleSheet(f"color: {NOTE_COLOUR}")
        self.farm_note.hide()

        self.count_choice = QRadioButton("How many runners:")
        self.count_choice.setToolTip("The hub takes the first runners (by name) that can "
                                     "take a part now")
        self.count = QSpinBox()
        self.count.setRange(1, 1)
        self.count.setToolTip(self.count_choice.toolTip())
        self.count_of = QLabel()
        self.names_choice = QRadioButton("These runners:")
        self.names_choice.setToolTip("Only the ticked runners are asked; one that cannot "
                                     "take a part is skipped, with the reason")
        self.how = QButtonGroup(self)
        self.how.addButton(self.count_choice)
        self.how.addButton(self.names_choice)
        self.count_choice.setChecked(True)
        self.runner_list = QListWidget()
        self.runner_list.setObjectName("farmRunners")
        self.explained = QLabel(FARM_EXPLAINED)
        self.explained.setWordWrap(True)
        self.explained.setStyleSheet("color: palette(placeholder-text)")

        self.farm_box = QWidget()
        farm_grid = QGridLayout(self.farm_box)
        farm_grid.setContentsMargins(24, 0, 0, 0)
        farm_grid.addWidget(self.count_choice, 0, 0)
        farm_grid.addWidget(self.count, 0, 1)
        farm_grid.addWidget(self.count_of, 0, 2)
        farm_grid.setColumnStretch(2, 1)
        farm_grid.addWidget(self.names_choice, 1, 0, 1, 3)
        farm_grid.addWidget(self.runner_list, 2, 0, 1, 3)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.render_button = self.buttons.addButton(
            "Render", QDialogButtonBox.ButtonRole.AcceptRole)
        self.render_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = QLabel()
        self.problem.setStyleSheet(f"color: {NOTE_COLOUR}")

        where_box = QVBoxLayout()
        where_box.setSpacing(4)
        where_box.addWidget(self.engine_choice)
        where_box.addWidget(self.farm_choice)
        where_box.addWidget(self.farm_note)
        where_box.addWidget(self.farm_box)
        where_box.addWidget(self.explained)
        form = QFormLayout()
        form.addRow("Format:", self.format)
        form.addRow("Where:", where_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

        for button in (self.engine_choice, self.farm_choice, self.count_choice,
                       self.names_choice):
            button.toggled.connect(self._update)
        self.runner_list.itemChanged.connect(self._update)
        self.prepare({"id": ""}, [])

    def prepare(self, task: Mapping[str, Any], runners: Sequence[Mapping[str, Any]],
                unlisted: str | None = None) -> None:
        """Fill the dialog for ``task`` with the runners the hub listed; ``unlisted`` is why
        they could not be listed (the farm is then not offered). Keeps the format and
        where chosen last time, when they still apply."""
        self.task_id = str(task.get("id") or "")
        self.setWindowTitle(f"Render task {self.task_id}")
        engine = task.get("engine")
        self.engine_choice.setText(f"This task's engine ({engine})" if engine
                                   else "This task's engine")
        ticked = {self.runner_list.item(i).data(Qt.ItemDataRole.UserRole)
                  for i in range(self.runner_list.count())
                  if self.runner_list.item(i).checkState() == Qt.CheckState.Checked}
        fresh = not ticked
        self.runner_list.blockSignals(True)
        self.runner_list.clear()
        usable = 0
        for runner in runners:
            name = str(runner["id"])
            why = runner_unavailable(runner)
            item = QListWidgetItem(runner_line(runner))
            item.setData(Qt.ItemDataRole.UserRole, name)
            if why is None:
                usable += 1
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if fresh or name in ticked
                                   else Qt.CheckState.Unchecked)
                item.setToolTip(f"{name} can be asked for a part")
            else:
                item.setFlags(Qt.ItemFlag.NoItemFlags)  # shown, greyed, not tickable
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setToolTip(f"{name} cannot take a part now: {why}")
            self.runner_list.addItem(item)
        self.runner_list.blockSignals(False)
        rows = min(max(1, self.runner_list.count()), 5)  # more scroll
        row = max(self.runner_list.sizeHintForRow(0), self.fontMetrics().height() + 6)
        self.runner_list.setFixedHeight(rows * row + 2 * self.runner_list.frameWidth() + 4)
        total = len(runners)
        self.count.setRange(1, max(1, total))
        self.count.setValue(max(1, usable))
        self.count_of.setText(f"of {total} registered, {usable} up and ready"
                              if total else "")
        reason = unlisted or (None if runners else NO_RUNNER)
        self.farm_choice.setEnabled(reason is None)
        self.farm_choice.setToolTip(
            f"Not offered: {reason}" if reason else
            "Runners and this task's engine each render some chunks of the mix")
        if reason is not None:
            self.farm_note.setText(f"The farm is not offered: {reason}.")
            self.engine_choice.setChecked(True)
        elif usable == 0:
            self.farm_note.setText("No runner is up and ready now: the hub would skip "
                                   "them all and refuse the render.")
        self.farm_note.setVisible(reason is not None or usable == 0)
        self.farm_box.setVisible(reason is None)  # nothing to choose from
        self._update()
        if not self.isVisible():
            self.adjustSize()  # the list's height follows the runners

    def choice(self) -> Where:
        if not self.farm_choice.isChecked():
            return "engine"
        return "count" if self.count_choice.isChecked() else "names"

    def ticked_runners(self) -> list[str]:
        return [str(self.runner_list.item(i).data(Qt.ItemDataRole.UserRole))
                for i in range(self.runner_list.count())
                if self.runner_list.item(i).checkState() == Qt.CheckState.Checked]

    def request(self) -> dict[str, Any]:
        """The render's body for the choices shown; ValueError when they do not make one."""
        return render_request(str(self.format.currentData()), self.choice(),
                              self.count.value(), self.ticked_runners())

    def _update(self) -> None:
        farm = self.farm_choice.isChecked()
        self.farm_box.setEnabled(farm)
        self.count.setEnabled(farm and self.count_choice.isChecked())
        self.runner_list.setEnabled(farm and self.names_choice.isChecked())
        try:
            self.request()
        except ValueError as exc:
            problem = str(exc)
        else:
            problem = ""
        self.problem.setText(problem[:1].upper() + problem[1:])
        self.problem.setVisible(bool(problem))
        self.render_button.setEnabled(not problem)

    def accept(self) -> None:
        try:
            request = self.request()
        except ValueError:
            return  # the button is disabled; Enter in a field can still get here
        super().accept()
        self.requested.emit(self.task_id, request)
