"""The Runners tab: the render farm's runners and the jobs they run.

Top: every runner with its health (colour and word), phase, labels, hardware, load,
jobs and last heartbeat, with "Add runner…" (a fresh enrollment token and the commands
for the other machine), "Runner log" (the tail of its log, fetched from the runner
through the hub) and "Revoke…". Bottom: the jobs (:class:`ui.runners.jobs_view.JobsPanel`).

Everything comes from the hub's HTTP API through the bridge, so the tab works the same
against a remote hub. It is refreshed when the hub announces a ``runner.*`` or ``job.*``
event (or a runner's component changes health), debounced so a burst of progress
reports costs one request, and every few seconds while the tab is on screen, since a
heartbeat (load, free resources) is not an event. Nothing is fetched while it is hidden.
On a read-only console (a viewer token) Add runner… and Revoke… are greyed out with the
reason, as are Submit and Cancel below; runners, jobs, their output and logs are reads.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError
from ui.core import health_style
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.table_model import record_table, select_record, selected_record_id
from ui.runners.add_runner_dialog import AddRunnerDialog
from ui.runners.jobs_view import JobsPanel
from ui.runners.model import (
    HARDWARE,
    HEALTH,
    HEARTBEAT,
    JOBS,
    LABELS,
    LOAD,
    PHASE,
    RUNNER,
    RunnersModel,
)

#: A burst of events (progress reports) within this many ms costs one refresh.
DEBOUNCE_MS = 250
#: While on screen, the tab asks again this often for what no event announces.
POLL_S = 5.0
#: Lines of a runner's log fetched by "Runner log".
LOG_LINES = 200


def log_error_text(runner_id: str, error: ClientError) -> str:
    """Why a runner's log could not be fetched, and what the operator can do."""
    if error.status == 503:
        return (f"{runner_id} is not connected to the hub right now (stopped, away or "
                "revoked), so its log cannot be fetched from here. It is on that machine "
                "in the runner's data dir, under logs/agent.log.")
    if error.status == 504:
        return (f"{runner_id} is connected but did not send its log within 5 s; it may be "
                "overloaded or its network slow. Try again in a moment.")
    if error.status == 404:
        return f"The hub no longer knows a runner called {runner_id}."
    return f"Could not fetch the log of {runner_id}: {error.message}"


def readable_log(text: str) -> str:
    """The runner's JSON log lines as ``15:36:46.739  info     message  key=value``.

    Times are shown in this machine's zone (the log keeps UTC); a line that is not one
    of the runner's JSON records is kept as it is.
    """
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            when = datetime.fromisoformat(str(entry.pop("ts"))).astimezone()
            level, message = str(entry.pop("level", "")), str(entry.pop("msg", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(line)
            continue
        exc = entry.pop("exc", None)
        for key in ("component", "logger", "taskName"):
            entry.pop(key, None)
        extra = "  ".join(f"{k}={v}" for k, v in entry.items())
        out.append(f"{when:%H:%M:%S}.{when.microsecond // 1000:03d}  {level:<8} {message}"
                   + (f"  {extra}" if extra else ""))
        if exc:
            out.extend(f"    {row}" for row in str(exc).splitlines())
    return "\n".join(out)


class RunnerLogPanel(QWidget):
    """The tail of one runner's log, or the reason it could not be fetched."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner_id: str | None = None
        self.title = QLabel("<b>Runner log</b>")
        self.title.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Fetch the tail of this runner's log again")
        self.hide_button = QPushButton("Hide")
        self.hide_button.setToolTip("Close this panel")
        self.hide_button.clicked.connect(self.hide)
        self.error = QLabel()
        self.error.setObjectName("runnerLogError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {health_style.colour_name('down')}")
        self.error.hide()
        self.text = QPlainTextEdit()
        self.text.setObjectName("runnerLog")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)  # a narrow panel
        self.text.setToolTip(f"The last {LOG_LINES} lines of the runner's own log, "
                             "as it sent them")
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.refresh_button)
        head.addWidget(self.hide_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.error)
        layout.addWidget(self.text, 1)
        self.setMinimumWidth(280)

    def loading(self, runner_id: str) -> None:
        self.runner_id = runner_id
        self.title.setText(f"<b>Log of {runner_id}</b> — fetching…")
        self.show()

    def show_text(self, runner_id: str, text: str) -> None:
        self.runner_id = runner_id
        stamp = time.strftime("%H:%M:%S")
        self.title.setText(f"<b>Log of {runner_id}</b> — last {LOG_LINES} lines, "
                           f"fetched {stamp}")
        self.error.hide()
        self.text.setPlainText(readable_log(text) or "(the log is empty)")
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())  # the newest lines, which are at the end
        self.show()

    def show_error(self, runner_id: str, error: ClientError) -> None:
        self.runner_id = runner_id
        self.title.setText(f"<b>Log of {runner_id}</b>")
        self.error.setText(log_error_text(runner_id, error))
        self.error.show()
        self.text.clear()
        self.show()


class RunnersView(QWidget):
    """Runners on top, jobs below; refreshed by hub events while on screen."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.model = RunnersModel(self)
        self.add_dialog: AddRunnerDialog | None = None
        self.revoke_box: QMessageBox | None = None
        self._refreshing: asyncio.Task[Any] | None = None
        self._again = False
        self._stale = True  # something changed while hidden: refresh when shown
        self._last_fetch = 0.0

        self.title = QLabel("<b>Runners</b>")
        self.title.setToolTip("Machines that take jobs from this hub (the render farm)")
        self.add_button = QPushButton("Add runner…")
        self.add_button.setToolTip("Create a one-time enrollment token and see the commands "
                                   "that make another machine a runner")
        self.add_button.clicked.connect(self.open_add_runner)
        self.log_button = QPushButton("Runner log")
        self.log_button.setToolTip("Fetch the tail of the selected runner's own log")
        self.log_button.clicked.connect(self.fetch_log)
        self.revoke_button = QPushButton("Revoke…")
        self.revoke_button.setToolTip("Disconnect the selected runner and refuse its "
                                      "credentials from now on (asks first)")
        self.revoke_button.clicked.connect(self.ask_revoke)
        self.status = QLabel()
        self.status.setObjectName("runnersStatus")
        self.status.setStyleSheet(f"color: {health_style.colour_name('down')}")
        self.status.hide()
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.status)
        head.addStretch(1)
        head.addWidget(self.add_button)
        head.addWidget(self.log_button)
        head.addWidget(self.revoke_button)
        bridge.access.guard(self.add_button, self.revoke_button)

        self.table = self._build_table()
        empty = QLabel(
            "No runners yet. A runner is a machine that takes jobs — command lines and "
            "renders — from this hub. "
            + ("Click <b>Add runner…</b> for a one-time token and the commands to run on "
               "that machine." if bridge.access.may_change else
               f"An operator enrolls them (this console is {bridge.access.label})."))
        empty.setObjectName("emptyHint")
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setMargin(16)
        self.stack = QStackedWidget()
        self.stack.addWidget(empty)
        self.stack.addWidget(self.table)
        self.log_panel = RunnerLogPanel()
        self.log_panel.refresh_button.clicked.connect(
            lambda: self.fetch_log(self.log_panel.runner_id))
        self.log_panel.hide()
        runners_split = QSplitter(Qt.Orientation.Horizontal)
        runners_split.addWidget(self.stack)
        runners_split.addWidget(self.log_panel)
        runners_split.setChildrenCollapsible(False)
        runners_split.setStretchFactor(0, 3)
        runners_split.setStretchFactor(1, 2)
        runners_split.setSizes([820, 420])
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(head)
        top_layout.addWidget(runners_split, 1)

        self.jobs = JobsPanel(bridge, actions)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("runnersSplitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.jobs)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([200, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self.setMinimumSize(720, 420)
        self.setStyleSheet("QLabel#emptyHint { background: palette(base); border: 1px dashed "
                           "palette(mid); border-radius: 6px; }")

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        bridge.event_received.connect(self.note_event)
        self._update_buttons()

    def _build_table(self) -> QTableView:
        table = record_table(self.model, "runnersTable")
        table.setWordWrap(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        table.setMinimumSize(420, 90)
        table.setToolTip("Runners enrolled with this hub; hover a cell for the details")
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column, width in ((RUNNER, 110), (HEALTH, 95), (PHASE, 80), (LABELS, 90),
                              (HARDWARE, 190), (LOAD, 85), (JOBS, 75), (HEARTBEAT, 100)):
            header.resizeSection(column, width)
        table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        return table

    # -- refreshing -------------------------------------------------------------------

    def note_event(self, event: dict[str, Any]) -> None:
        """A hub event: refresh soon if it concerns runners or jobs."""
        kind = str(event.get("type", ""))
        subject = str(event.get("subject", ""))
        data = event.get("data") or {}
        relevant = kind.startswith(("job.", "runner.")) or (
            kind.startswith("component.")
            and (self.model.find(subject) is not None
                 or (isinstance(data, dict) and data.get("kind") == "runner")))
        if not relevant:
            return
        if self.isVisible():
            if not self._debounce.isActive():  # coalesce a burst, never postpone forever
                self._debounce.start()
        else:
            self._stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._ticker.start()
        if self._stale or time.monotonic() - self._last_fetch > POLL_S:
            self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._ticker.stop()

    def _tick(self) -> None:
        self.model.tick()
        self.jobs.model.tick()
        if time.monotonic() - self._last_fetch >= POLL_S:
            self.refresh()

    def refresh(self) -> asyncio.Task[Any] | None:
        """Fetch runners and jobs; one request pair at a time, again if asked meanwhile."""
        if self._refreshing is not None and not self._refreshing.done():
            self._again = True
            return self._refreshing
        self._again = False
        self._stale = False
        self._last_fetch = time.monotonic()

        async def fetch() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | str:
            try:
                runners, jobs = await asyncio.gather(self.bridge.runners(), self.bridge.jobs())
            except ClientError as exc:
                return exc.message
            return runners, jobs

        self._refreshing = self.commands.run("Refresh runners and jobs", fetch(),
                                             on_done=self._on_fetched)
        return self._refreshing

    def _on_fetched(self, result: tuple[list[dict[str, Any]], list[dict[str, Any]]] | str
                    ) -> None:
        if isinstance(result, str):  # shown in the tab, not as a notification every 5 s
            self.status.setText(f"Could not refresh: {result}")
            self.status.show()
        else:
            self.status.hide()
            self.set_runners(result[0])
            self.jobs.set_jobs(result[1])
        if self._again:
            self._debounce.start()

    def set_runners(self, runners: list[dict[str, Any]]) -> None:
        selected = self.selected_runner_id()
        self.model.set_runners(runners)
        self.stack.setCurrentIndex(1 if runners else 0)
        counts: dict[str, int] = {}
        for runner in runners:
            counts[str(runner.get("state"))] = counts.get(str(runner.get("state")), 0) + 1
        self.title.setText(f"<b>Runners ({len(runners)})</b> " + " ".join(
            f"{health_style.dot_html(s)} {counts[s]} {health_style.label(s)}"
            for s in health_style.STATES if counts.get(s)))
        if selected is not None and self.selected_runner_id() != selected:
            self.select_runner(selected)
        elif selected is None and runners:
            self.table.selectRow(0)
        if self.add_dialog is not None:
            self.add_dialog.note_runners(runners)
        self._update_buttons()

    # -- selection and commands -------------------------------------------------------

    def select_runner(self, runner_id: str) -> bool:
        return select_record(self.table, self.model, runner_id)

    def selected_runner_id(self) -> str | None:
        return selected_record_id(self.table, self.model)

    def _update_buttons(self) -> None:
        runner = self.model.find(self.selected_runner_id())
        self.log_button.setEnabled(runner is not None)
        self.revoke_button.setEnabled(runner is not None and not runner.get("revoked"))

    def open_add_runner(self) -> AddRunnerDialog:
        if self.add_dialog is None:
            self.add_dialog = AddRunnerDialog(self.bridge, self.commands, self)
        self.add_dialog.open_fresh([str(r["id"]) for r in self.model.runners()])
        return self.add_dialog

    def fetch_log(self, runner_id: str | None = None) -> asyncio.Task[Any] | None:
        runner_id = runner_id or self.selected_runner_id()
        if runner_id is None:
            return None
        self.log_panel.loading(runner_id)

        async def fetch() -> str | ClientError:
            try:
                return await self.bridge.runner_logs(runner_id, LOG_LINES)
            except ClientError as exc:
                return exc

        def show(answer: str | ClientError) -> None:
            if isinstance(answer, ClientError):
                self.log_panel.show_error(runner_id, answer)
            else:
                self.log_panel.show_text(runner_id, answer)

        return self.commands.run(f"Log of {runner_id}", fetch(), on_done=show)

    def ask_revoke(self) -> None:
        """A non-modal question (no nested event loop); revoked only on "Revoke"."""
        runner_id = self.selected_runner_id()
        if runner_id is None:
            return
        if self.revoke_box is not None:
            self.revoke_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Revoke runner",
                          f"Revoke runner {runner_id}?", parent=self)
        box.setInformativeText(
            "Its connection is closed now and its credentials are refused from then on. "
            "Jobs running on it are marked lost once the hub's runner lease runs out. To "
            "use that machine again, enroll it with a new token (Add runner…).")
        revoke = box.addButton("Revoke", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r: self._on_revoke_answer(box, revoke, runner_id))
        self.revoke_box = box
        box.setWindowModality(Qt.WindowModality.NonModal)  # the tab stays usable meanwhile
        box.show()

    def _on_revoke_answer(self, box: QMessageBox, revoke: Any, runner_id: str) -> None:
        if self.revoke_box is box:
            self.revoke_box = None
        box.deleteLater()
        if box.clickedButton() is revoke:
            self.revoke(runner_id)

    def revoke(self, runner_id: str) -> asyncio.Task[Any]:
        def revoked(_view: dict[str, Any]) -> None:
            self.refresh()

        return self.commands.run(f"Revoke {runner_id}", self.bridge.revoke_runner(runner_id),
                                 on_done=revoked)

    async def close_streams(self) -> None:
        self._debounce.stop()
        self._ticker.stop()
        await self.jobs.close_streams()
