"""The Tasks tab: audio tasks with their state, a spec editor to reserve one, and transport.

Left: the tasks (fed by the bridge's ``tasks_changed``) and, under them, the spec editor
with Reserve. Right: the selected task — Play/Stop (Space), Render, Cancel render and
Release, each enabled only where the hub accepts it now: the task's view carries the
``commands`` its hub takes in the task's current state, so a console never second-guesses
a hub of another version (one too old to say offers nothing); the render's progress with
the time left; the finished renders with "Open folder" and "Save as"; and the meters of
its stream. On a read-only console (a viewer token) Reserve, Try the demo and the
transport are greyed out with the reason; specs can still be opened and checked, renders
saved, and a playing task's meters followed and heard.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from backend.audio import TaskSpec
from backend.client import ClientError
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.table_model import record_table, selected_record_id
from ui.tasks.model import DRIVERS, ENGINE, STATE, TASK, TasksModel
from ui.tasks.panel import TaskPanel
from ui.tasks.spec_editor import DEMO_SPEC, SpecEditor


class TasksView(QWidget):
    """Tasks list and reserve on the left, the selected task on the right."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.model = TasksModel(self)
        self.table = record_table(self.model, "tasksTable")
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
        self.try_demo_button = QPushButton("Try the demo")
        self.try_demo_button.setObjectName("tryDemo")
        self.try_demo_button.setToolTip(
            f"Reserve the demo task ({DEMO_SPEC.name}) and play it, meters moving: needs "
            "engine-1, driver-1 and driver-2 up (Components ▸ Start a local studio)")
        self.try_demo_button.clicked.connect(self.try_demo)
        tasks_row = QHBoxLayout()
        tasks_row.addWidget(tasks_title, 1)
        tasks_row.addWidget(self.try_demo_button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(tasks_row)
        top_layout.addWidget(self.table, 1)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(top)
        left.addWidget(new_panel)
        left.setChildrenCollapsible(False)
        left.setSizes([160, 260])

        self.panel = TaskPanel(bridge, actions)
        bridge.access.guard(self.reserve_button, self.try_demo_button)
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

    def try_demo(self) -> asyncio.Task[Any]:
        """Reserve the demo spec, wait until engine and drivers accept it, and play it.

        The spec is also put in the editor, so the operator sees what was reserved; a
        refusal (say the drivers are not up yet) is shown there and as a notification.
        """
        self.try_demo_button.setEnabled(False)

        async def demo() -> str:
            try:
                self.editor.set_text(await asyncio.to_thread(DEMO_SPEC.read_text))
                spec = self.editor.validate()
                if spec is None:  # the editor shows why, at the field
                    raise ClientError(f"the demo spec {DEMO_SPEC.name} is not valid")
                try:
                    task = await self.bridge.reserve_task(spec)
                except ClientError as exc:
                    self.editor.show_refusal(exc.message)
                    raise
                task_id = str(task["id"])
                self.select(task_id)
                await self.bridge.wait_task(task_id)
                await self.bridge.play_task(task_id)
                return task_id
            finally:
                self.try_demo_button.setEnabled(True)

        return self.commands.run("Try the demo", demo())

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
        self._selected_id = selected_record_id(self.table, self.model)
        self.panel.show_task(self.selected_task())

    def _on_updated(self) -> None:
        row = self.model.row_of(self._selected_id) if self._selected_id else None
        selected = self.table.selectionModel().selectedRows()
        if row is not None and (not selected or selected[0].row() != row):
            self.table.selectRow(row)
            return  # _on_selection shows it
        self.panel.show_task(self.selected_task())
