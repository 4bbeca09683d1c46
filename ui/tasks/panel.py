"""The selected task's panel: Play/Stop, Render, Cancel render and Release (each enabled only
where the task's hub accepts it now), the render's progress and time left (and, for a
farm render, each part's), the finished renders with Open folder and Save as, the meters
of its stream and the live instance controls. Render asks where first: this task's
engine or the render farm (``render_dialog.py``). On a read-only console the transport is
greyed out with the reason (and Space does nothing); the files, the meters and the audio
are reads, and stay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    Qt,
    QUrl,
)
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError
from backend.diskspace import copy_whole
from ui.core.accepts import accepts
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.typography import escape
from ui.tasks.farm_parts import farm_of
from ui.tasks.farm_progress import FarmProgress
from ui.tasks.instance_controls import InstanceControls
from ui.tasks.meters import MetersPanel
from ui.tasks.model import STATE_COLOURS, active_render, detail_text, time_left
from ui.tasks.render_dialog import RenderDialog


class TaskPanel(QWidget):
    """The selected task: transport buttons, render progress, files, meters."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.access = bridge.access
        self.task: dict[str, Any] | None = None
        self.render_dialog: RenderDialog | None = None  # made on the first Render

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
        self.render_button = QPushButton("Render…")
        self.render_button.setToolTip(
            "Render the whole task offline to a WAV file, on this task's engine or split "
            "over the render farm")
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
        self.access.guard(self.play_button, self.stop_button, self.render_button,
                          self.cancel_button, self.release_button)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p %")
        self.progress.setToolTip("Progress of the running render")
        self.progress_label = QLabel("No render running")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_label)
        self.farm = FarmProgress()  # a farm render's parts, under its overall bar
        render_box = QVBoxLayout()
        render_box.setSpacing(2)
        render_box.addLayout(progress_row)
        render_box.addWidget(self.farm)

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
        form.addRow("Render:", render_box)
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
            if farm_of(render) is not None:
                text += " · farm"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, render["render_id"])
            self.renders.addItem(item)
            if render["render_id"] == keep or (keep is None and state == "done"):
                self.renders.setCurrentItem(item)

    def _show_progress(self) -> None:
        render = active_render(self.task) if self.task else None
        last = self.task["renders"][-1] if self.task and self.task.get("renders") else None
        self.farm.show_farm(farm_of(render or last),
                            str(self.task.get("engine") or "") if self.task else None)
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
        self.play_button.setEnabled(accepts(self.task, "play"))
        self.stop_button.setEnabled(accepts(self.task, "stop"))
        self.render_button.setEnabled(accepts(self.task, "render"))
        self.cancel_button.setEnabled(accepts(self.task, "render_cancel"))
        self.release_button.setEnabled(accepts(self.task, "release"))
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

    def _may(self, command: str) -> bool:
        """The hub takes ``command`` for the selected task now, from this console: the
        buttons say so, but Space reaches :meth:`toggle_play` without them."""
        return self.access.allows(accepts(self.task, command))

    def play(self) -> None:
        if self.task and self._may("play"):
            self.meters.follow(self.task["id"])
            self._command(f"Play {self.task['id']}", self.bridge.play_task(self.task["id"]))

    def stop(self) -> None:
        if self.task and self._may("stop"):
            self._command(f"Stop {self.task['id']}", self.bridge.stop_task(self.task["id"]))

    def toggle_play(self) -> None:
        if self.task is None:
            return
        if accepts(self.task, "stop"):
            self.stop()
        else:
            self.play()

    def start_render(self) -> asyncio.Task[Any] | None:
        """Ask where to render: list the runners, then open the render dialog on them."""
        if not (self.task and self._may("render")):
            return None
        task = dict(self.task)
        if self.render_dialog is not None and self.render_dialog.isVisible():
            self.render_dialog.raise_()
            return None

        async def runners() -> tuple[list[dict[str, Any]], str | None]:
            try:
                return await self.bridge.runners(), None
            except ClientError as exc:  # the engine can still render
                return [], f"the runners could not be listed ({exc.message})"

        def ask(found: tuple[list[dict[str, Any]], str | None]) -> None:
            self.open_render_dialog(task, *found)

        return self.commands.run(f"List the runners for {task['id']}", runners(),
                                 on_done=ask)

    def open_render_dialog(self, task: dict[str, Any], runners: list[dict[str, Any]],
                           unlisted: str | None = None) -> RenderDialog:
        """The render dialog for ``task``, open; accepting it starts the render."""
        if self.render_dialog is None:
            self.render_dialog = RenderDialog(self)
            self.render_dialog.requested.connect(self.render_with)
        self.render_dialog.prepare(task, runners, unlisted)
        self.render_dialog.open()  # not exec(): no nested event loop
        return self.render_dialog

    def render_with(self, task_id: str, request: dict[str, Any]) -> asyncio.Task[Any]:
        """Start the render ``request`` (:func:`~ui.tasks.render_dialog.render_request`)."""
        where = "on the farm" if request.get("farm") else ""
        return self.commands.run(
            f"Render {task_id} {where}".rstrip(),
            self.bridge.render_task(task_id, str(request["format"]), request.get("farm")))

    def cancel_render(self) -> None:
        render = active_render(self.task) if self.task else None
        if self.task and render is not None and self._may("render_cancel"):
            self._command(f"Cancel render {render['render_id']}",
                          self.bridge.cancel_render(self.task["id"], render["render_id"]))

    def release(self) -> None:
        if self.task and self._may("release"):
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
            return await asyncio.to_thread(copy_whole, source, target,
                                           "the folder the render is saved to")

        return self.commands.run(f"Save {target.name}", save(self.task["id"]))
