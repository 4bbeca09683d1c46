"""The Tasks tab: audio tasks with their state, a spec editor to reserve one, and transport.

Left: the tasks (fed by the bridge's ``tasks_changed``) and, under them, the spec editor
with Reserve. Right: the selected task — Play/Stop (Space), Render, Cancel render and
Release, each enabled only where the hub accepts it now: the task's view carries the
``commands`` its hub takes in the task's current state, so a console never second-guesses
a hub of another version (one too old to say offers nothing); the render's progress with
the time left; the finished renders with "Open folder" and "Save as"; and the meters of
its stream.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
)
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backend.audio.spec import TaskSpec
from backend.client import ClientError
from ui.actions import Actions
from ui.bridge import HubBridge
from ui.instance_controls import InstanceControls
from ui.meters import MetersPanel
from ui.spec_editor import DEMO_SPEC, SpecEditor
from ui.table_model import HeaderedTableModel
from ui.typography import escape

TASK, STATE, ENGINE, DRIVERS, DETAIL = range(5)
HEADERS = ("Task", "State", "Engine", "Drivers", "Detail")
STATE_COLOURS = {
    "pending": "#ef6c00", "ready": "#1565c0", "playing": "#2e7d32", "rendering": "#6a1b9a",
    "failed": "#c62828", "released": "#757575",
}
_Index = QModelIndex | QPersistentModelIndex


def allowed(command: str, task: Mapping[str, Any] | None) -> bool:
    """Whether the task's hub accepts ``command`` now (its view's ``commands``).

    A hub too old to list them gets no commands from this console: guessing from the
    state would offer what that hub may refuse.
    """
    if task is None:
        return False
    commands = task.get("commands")
    return isinstance(commands, list) and command in commands


def active_render(task: dict[str, Any]) -> dict[str, Any] | None:
    for render in task.get("renders", []):
        if render.get("state") == "running":
            return dict(render)
    return None


def time_left(render: dict[str, Any], now: float) -> float | None:
    """Seconds left at the render's average pace so far; None before there is a pace."""
    progress = float(render.get("progress") or 0.0)
    started = float(render.get("started_at") or 0.0)
    if progress <= 0.0 or started <= 0.0 or progress >= 1.0:
        return None
    elapsed = max(0.0, now - started)
    return elapsed * (1.0 - progress) / progress


def detail_text(task: dict[str, Any]) -> str:
    state = task.get("state")
    if state == "failed":
        return str(task.get("error") or "failed")
    if state == "pending" and task.get("waiting_for"):
        return "waiting for " + ", ".join(task["waiting_for"])
    render = active_render(task)
    if render is not None:
        return f"rendering {float(render.get('progress') or 0) * 100:.0f} %"
    if state == "playing":
        position = float((task.get("play") or {}).get("position_s") or 0)
        return f"playing at {position:.1f} s" if position else "playing in real time"
    done = [r for r in task.get("renders", []) if r.get("state") == "done"]
    if done:
        return f"{len(done)} render{'s' * (len(done) != 1)} done"
    return ""


class TasksModel(HeaderedTableModel):
    headers = HEADERS

    updated = QtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[dict[str, Any]] = []

    def set_tasks(self, tasks: list[dict[str, Any]]) -> None:
        ids = [t["id"] for t in tasks]
        if ids != [t["id"] for t in self._tasks]:
            self.beginResetModel()
            self._tasks = list(tasks)
            self.endResetModel()
        else:
            self._tasks = list(tasks)
            if tasks:
                self.dataChanged.emit(self.index(0, 0), self.index(len(tasks) - 1, DETAIL))
        self.updated.emit()

    def tasks(self) -> list[dict[str, Any]]:
        return list(self._tasks)

    def task(self, row: int) -> dict[str, Any]:
        return self._tasks[row]

    def find(self, task_id: str | None) -> dict[str, Any] | None:
        for task in self._tasks:
            if task["id"] == task_id:
                return task
        return None

    def row_of(self, task_id: str) -> int | None:
        for row, task in enumerate(self._tasks):
            if task["id"] == task_id:
                return row
        return None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks:
            counts[task["state"]] = counts.get(task["state"], 0) + 1
        return counts

    def row_count(self) -> int:
        return len(self._tasks)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        task = self._tasks[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                task["id"], task["state"], task.get("engine", ""),
                ", ".join(sorted(task.get("drivers") or {})) or "—", detail_text(task),
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE:
            return QBrush(QColor(STATE_COLOURS.get(task["state"], "#000000")))
        if role == Qt.ItemDataRole.ToolTipRole:
            return detail_text(task) or f"task {task['id']} is {task['state']}"
        return None


class TaskPanel(QWidget):
    """The selected task: transport buttons, render progress, files, meters."""

    def __init__(self, bridge: HubBridge, actions: Actions,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.task: dict[str, Any] | None = None

        self.title = QLabel("No task selected")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play the task in real time (Space plays and stops)")
        self.play_button.clicked.connect(self.play)
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.setToolTip("Stop playing (Space)")
        self.stop_button.clicked.connect(self.stop)
        self.render_button = QPushButton("Render")
        self.render_button.setToolTip("Render the whole task offline to a 24-bit WAV file")
        self.render_button.clicked.connect(self.start_render)
        self.cancel_button = QPushButton("Cancel render")
        self.cancel_button.setToolTip("Stop the running render and delete its partial file")
        self.cancel_button.clicked.connect(self.cancel_render)
        self.release_button = QPushButton("Release")
        self.release_button.setToolTip(
            "Cancel the reservation: the engine and drivers drop the spec")
        self.release_button.clicked.connect(self.release)
        buttons = QHBoxLayout()
        for button in (self.play_button, self.stop_button, self.render_button,
                       self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.release_button)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p %")
        self.progress.setToolTip("Progress of the running render")
        self.progress_label = QLabel("No render running")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_label)

        self.renders = QListWidget()
        self.renders.setObjectName("rendersList")
        self.renders.setToolTip("This task's renders; select a finished one to open or save it")
        self.renders.setMaximumHeight(66)  # three files; the meters need the height more
        self.renders.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setToolTip("Show the rendered file in the file manager")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Copy the rendered file somewhere else")
        self.save_button.clicked.connect(self.ask_save_as)
        files_row = QHBoxLayout()
        files_row.addWidget(self.renders, 1)
        file_buttons = QVBoxLayout()
        file_buttons.addWidget(self.open_folder_button)
        file_buttons.addWidget(self.save_button)
        file_buttons.addStretch(1)
        files_row.addLayout(file_buttons)

        self.meters = MetersPanel(bridge, actions)
        # Live parameters of the task's instances; reports ride on the meters stream.
        self.instances = InstanceControls(
            bridge, actions, reports=lambda: (self.meters.latest or {}).get("reports"))
        self.live_splitter = QSplitter(Qt.Orientation.Vertical)
        self.live_splitter.addWidget(self.instances)
        self.live_splitter.addWidget(self.meters)
        self.live_splitter.setChildrenCollapsible(False)
        self.live_splitter.setStretchFactor(0, 2)
        self.live_splitter.setStretchFactor(1, 3)
        self.live_splitter.setSizes([180, 320])

        form = QFormLayout()
        form.addRow("Render:", progress_row)
        form.addRow("Files:", files_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.state_label)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.live_splitter, 1)
        self.setMinimumWidth(420)

        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self.space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.space.activated.connect(self.toggle_play)
        self.show_task(None)

    # -- showing ----------------------------------------------------------------------

    def show_task(self, task: dict[str, Any] | None) -> None:
        previous = self.task["id"] if self.task else None
        self.task = task
        if task is None:
            self.title.setText("No task selected")
            self.state_label.setText("Reserve a task on the left, or select one.")
            self.renders.clear()
        else:
            self.title.setText(f"Task {task['id']}")
            state = task["state"]
            colour = STATE_COLOURS.get(state, "#000000")
            text = f"<b style='color:{colour}'>{state}</b>"
            detail = detail_text(task)
            if detail:
                text += f" — {escape(detail)}"
            text += (f"<br>engine {task.get('engine')}; drivers "
                     f"{', '.join(sorted(task.get('drivers') or {})) or 'none'}")
            self.state_label.setText(text)
            self._show_renders(task)
        self._show_progress()
        self._update_buttons()
        task_id = task["id"] if task else None
        if task_id != previous:
            self.meters.follow(task_id)
        self.meters.set_task_state(task["state"] if task else None)
        self.instances.show_task(task)

    def _show_renders(self, task: dict[str, Any]) -> None:
        current = self.renders.currentItem()
        keep = current.data(Qt.ItemDataRole.UserRole) if current else None
        self.renders.clear()
        for render in task.get("renders", []):
            state = render.get("state")
            text = f"{render['render_id']} · {state}"
            if state == "done":
                size = float(render.get("bytes") or 0) / 1e6
                text += f" · {render.get('file')} ({size:.1f} MB)"
            elif state == "failed":
                text += f" · {render.get('error')}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, render["render_id"])
            self.renders.addItem(item)
            if render["render_id"] == keep or (keep is None and state == "done"):
                self.renders.setCurrentItem(item)

    def _show_progress(self) -> None:
        render = active_render(self.task) if self.task else None
        last = self.task["renders"][-1] if self.task and self.task.get("renders") else None
        if render is not None:
            progress = float(render.get("progress") or 0.0)
            self.progress.setValue(round(progress * 1000))
            left = time_left(render, time.time())
            self.progress_label.setText(
                "starting…" if left is None else f"about {left:.0f} s left")
        elif last is not None:
            self.progress.setValue(round(float(last.get("progress") or 0) * 1000))
            self.progress_label.setText({"done": "done", "failed": "failed",
                                         "cancelled": "cancelled"}.get(last["state"], ""))
        else:
            self.progress.setValue(0)
            self.progress_label.setText("No render yet")

    def _update_buttons(self) -> None:
        self.play_button.setEnabled(allowed("play", self.task))
        self.stop_button.setEnabled(allowed("stop", self.task))
        self.render_button.setEnabled(allowed("render", self.task))
        self.cancel_button.setEnabled(allowed("render_cancel", self.task))
        self.release_button.setEnabled(allowed("release", self.task))
        has_file = self.selected_render() is not None
        self.open_folder_button.setEnabled(has_file)
        self.save_button.setEnabled(has_file)

    def selected_render(self) -> str | None:
        """The selected render's id when it is done, so it has a file to fetch."""
        item = self.renders.currentItem()
        if item is None or self.task is None:
            return None
        render_id = item.data(Qt.ItemDataRole.UserRole)
        for render in self.task.get("renders") or []:
            if render.get("render_id") == render_id:
                return str(render_id) if render.get("state") == "done" else None
        return None

    def fetch_selected_render(
        self, then: Callable[[Path], Any] | None = None,
    ) -> asyncio.Task[Any] | None:
        """The selected render's file on this machine, then ``then(path)``.

        A task, not a path: from a remote hub the file is downloaded first (into the
        console's cache), which must not block the window.
        """
        render_id = self.selected_render()
        if render_id is None or self.task is None:
            return None
        return self.commands.run(f"Fetch render {render_id}",
                                 self.bridge.fetch_render(self.task["id"], render_id),
                                 on_done=then)

    # -- commands ---------------------------------------------------------------------

    def _command(self, what: str, coro: Any) -> None:
        self.commands.run(what, coro)

    def play(self) -> None:
        if self.task and allowed("play", self.task):
            self.meters.follow(self.task["id"])
            self._command(f"Play {self.task['id']}", self.bridge.play_task(self.task["id"]))

    def stop(self) -> None:
        if self.task and allowed("stop", self.task):
            self._command(f"Stop {self.task['id']}", self.bridge.stop_task(self.task["id"]))

    def toggle_play(self) -> None:
        if self.task is None:
            return
        if allowed("stop", self.task):
            self.stop()
        else:
            self.play()

    def start_render(self) -> None:
        if self.task and allowed("render", self.task):
            self._command(f"Render {self.task['id']}", self.bridge.render_task(self.task["id"]))

    def cancel_render(self) -> None:
        render = active_render(self.task) if self.task else None
        if self.task and render is not None and allowed("render_cancel", self.task):
            self._command(f"Cancel render {render['render_id']}",
                          self.bridge.cancel_render(self.task["id"], render["render_id"]))

    def release(self) -> None:
        if self.task and allowed("release", self.task):
            self._command(f"Release {self.task['id']}",
                          self.bridge.release_task(self.task["id"]))

    def open_folder(self) -> asyncio.Task[Any] | None:
        """Open the folder of the selected render (fetched first from a remote hub)."""
        return self.fetch_selected_render(
            lambda path: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))))

    def ask_save_as(self) -> None:
        render_id = self.selected_render()
        if render_id is None or self.task is None:
            return
        name = f"{self.task['id']}-{render_id}.wav"  # as the hub's download names it
        dialog = QFileDialog(self, "Save the render as", str(Path.home() / name),
                             "WAV audio (*.wav)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.fileSelected.connect(lambda target: self.save_render_to(Path(target)))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # not exec(): no nested event loop

    def save_render_to(self, target: Path) -> asyncio.Task[Any] | None:
        """Fetch the selected render, then copy it to ``target`` in a worker thread."""
        render_id = self.selected_render()
        if render_id is None or self.task is None:
            return None

        async def save(task_id: str) -> Path:
            source = await self.bridge.fetch_render(task_id, render_id)
            await asyncio.to_thread(shutil.copyfile, source, target)
            return target

        return self.commands.run(f"Save {target.name}", save(self.task["id"]))


class TasksView(QWidget):
    """Tasks list and reserve on the left, the selected task on the right."""

    def __init__(self, bridge: HubBridge, actions: Actions,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.model = TasksModel(self)
        self.table = QTableView()
        self.table.setObjectName("tasksTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setMinimumHeight(100)
        self.table.setToolTip("Audio tasks; select one to play, render or release it")
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((TASK, 130), (STATE, 80), (ENGINE, 80), (DRIVERS, 130)):
            header.resizeSection(column, width)

        self.editor = SpecEditor()
        self.open_button = QPushButton("Open spec…")
        self.open_button.setToolTip("Load a task spec from a JSON file")
        self.open_button.clicked.connect(self.ask_open_spec)
        self.demo_button = QPushButton("Load demo")
        self.demo_button.setToolTip(f"The demo spec ({DEMO_SPEC.name}): needs engine-1, "
                                    "driver-1 and driver-2 up")
        self.demo_button.clicked.connect(self.load_demo)
        self.reserve_button = QPushButton("Reserve")
        self.reserve_button.setToolTip("Reserve a task from this spec on the hub")
        self.reserve_button.setEnabled(False)
        self.reserve_button.clicked.connect(self.reserve)
        self.editor.validated.connect(
            lambda spec: self.reserve_button.setEnabled(spec is not None))
        new_title = QLabel("<b>New task</b> — spec (JSON), checked as you type")
        new_row = QHBoxLayout()
        new_row.addWidget(new_title, 1)
        new_row.addWidget(self.open_button)
        new_row.addWidget(self.demo_button)
        new_row.addWidget(self.reserve_button)
        new_panel = QWidget()
        new_layout = QVBoxLayout(new_panel)
        new_layout.setContentsMargins(0, 4, 0, 0)
        new_layout.addLayout(new_row)
        new_layout.addWidget(self.editor, 1)

        tasks_title = QLabel("<b>Tasks</b>")
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(tasks_title)
        top_layout.addWidget(self.table, 1)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(top)
        left.addWidget(new_panel)
        left.setChildrenCollapsible(False)
        left.setSizes([160, 260])

        self.panel = TaskPanel(bridge, actions)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.panel)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([520, 640])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self.setMinimumSize(720, 360)

        table_space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.table)
        table_space.setContext(Qt.ShortcutContext.WidgetShortcut)
        table_space.activated.connect(self.panel.toggle_play)
        self._selected_id: str | None = None
        bridge.tasks_changed.connect(self.model.set_tasks)
        self.model.updated.connect(self._on_updated)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

    # -- reserve ----------------------------------------------------------------------

    def load_demo(self) -> None:
        self.editor.set_text(DEMO_SPEC.read_text())

    def ask_open_spec(self) -> None:
        dialog = QFileDialog(self, "Open a task spec", str(DEMO_SPEC.parent),
                             "Task specs (*.json)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(lambda path: self.open_spec(Path(path)))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def open_spec(self, path: Path) -> None:
        async def read() -> str:
            return await asyncio.to_thread(path.read_text)

        self.commands.run(f"Open {path.name}", read(), on_done=self.editor.set_text)

    def reserve(self) -> asyncio.Task[Any] | None:
        spec: TaskSpec | None = self.editor.validate()
        if spec is None:
            return None
        self.reserve_button.setEnabled(False)

        async def reserve() -> dict[str, Any]:
            try:
                return await self.bridge.reserve_task(spec)
            except ClientError as exc:
                self.editor.show_refusal(exc.message)
                raise
            finally:
                self.reserve_button.setEnabled(self.editor.spec is not None)

        return self.commands.run("Reserve", reserve(),
                                on_done=lambda task: self._select_quietly(task["id"]))

    # -- selection --------------------------------------------------------------------

    def select(self, task_id: str) -> bool:
        row = self.model.row_of(task_id)
        if row is None:
            self._selected_id = task_id  # selected when it appears
            return False
        self.table.selectRow(row)
        return True

    def _select_quietly(self, task_id: str) -> None:
        self.select(task_id)

    def selected_task(self) -> dict[str, Any] | None:
        return self.model.find(self._selected_id)

    def _on_selection(self, *_args: object) -> None:
        rows = self.table.selectionModel().selectedRows()
        self._selected_id = self.model.task(rows[0].row())["id"] if rows else None
        self.panel.show_task(self.selected_task())

    def _on_updated(self) -> None:
        row = self.model.row_of(self._selected_id) if self._selected_id else None
        selected = self.table.selectionModel().selectedRows()
        if row is not None and (not selected or selected[0].row() != row):
            self.table.selectRow(row)
            return  # _on_selection shows it
        self.panel.show_task(self.selected_task())
