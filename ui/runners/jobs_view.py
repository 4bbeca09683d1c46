"""The jobs half of the Runners tab: the job table, Submit and Cancel, details and output.

The table is fed by :class:`ui.runners.view.RunnersView`, which refreshes it when the
hub announces a ``job.*`` event. Selecting a job shows its facts and its output: a job
that has ended gets its whole log in one request; a queued or running one is followed
live over the hub's SSE stream (``HubBridge.follow_job_log``), which waits for a queued
job to start and ends with the job. Only the selected job is followed; a follower is
stopped by an event, never cancelled mid-read (see ``HubBridge.follow_run``). Submit and
Cancel change state: a read-only console greys them out with the reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError
from ui.core.accepts import accepts
from ui.core.bridge import HubBridge, wait_for_followers
from ui.core.coroutines import CoroutineRunner
from ui.core.formatting import format_timestamp
from ui.core.table_model import record_table, select_record, selected_record_id
from ui.core.typography import escape
from ui.runners.job_dialogs import SubmitJobDialog
from ui.runners.jobs_model import (
    ACTIVE,
    DURATION,
    ENDED,
    JOB,
    KIND,
    PROGRESS,
    RESULT,
    RUNNER,
    STATE,
    STATE_MEANINGS,
    WHAT,
    JobsModel,
    ProgressDelegate,
    duration_text,
    result_text,
    state_colour,
    state_word,
    what_text,
)

#: Lines of output kept in the viewer (a long job's whole log is still on the hub).
MAX_LOG_LINES = 20_000


def needs_text(needs: dict[str, Any]) -> str:
    parts = [f"{float(needs.get('cpus', 1)):g} CPU"]
    if needs.get("memory_mb"):
        parts.append(f"{needs['memory_mb']} MB memory")
    if needs.get("gpus"):
        parts.append(f"{needs['gpus']} GPU")
    if needs.get("labels"):
        parts.append("labels " + ", ".join(needs["labels"]))
    return ", ".join(parts)


class JobsPanel(QWidget):
    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.model = JobsModel(self)
        self.submit_dialog: SubmitJobDialog | None = None
        self.log_job: str | None = None  # whose output the viewer shows
        self.following: str | None = None  # whose output is being followed live
        self._follow_stop: asyncio.Event | None = None
        self._followers: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._log_complete = False  # the viewer holds the whole output of an ended job
        self._resetting = False

        self.title = QLabel("<b>Jobs</b>")
        self.submit_button = QPushButton("Submit job…")
        self.submit_button.setToolTip("Queue a command or render job for the runners")
        self.submit_button.clicked.connect(self.open_submit)
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setToolTip("A queued job is dropped at once; a running one gets "
                                      "SIGTERM, then SIGKILL after the runner's grace time")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_selected)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.submit_button)
        head.addWidget(self.cancel_button)
        bridge.access.guard(self.submit_button, self.cancel_button)

        self.table = record_table(self.model, "jobsTable")
        self.table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(self.model, self.table))
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        self.table.setMinimumSize(420, 120)
        self.table.setToolTip("Jobs on the hub, newest first; select one for its output")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column, width in ((JOB, 120), (KIND, 70), (WHAT, 200), (STATE, 95),
                              (RUNNER, 85), (PROGRESS, 110), (DURATION, 75), (RESULT, 150)):
            header.resizeSection(column, width)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        empty = QLabel("No jobs yet. <b>Submit job…</b> queues one; the hub offers it to a "
                       "runner whose free resources and labels fit, and it shows here with "
                       "its progress." if bridge.access.may_change else
                       "No jobs yet. Jobs an operator queues show here with their progress "
                       f"(this console is {bridge.access.label}).")
        empty.setObjectName("emptyHint")
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setMargin(16)
        self.stack = QStackedWidget()
        self.stack.addWidget(empty)
        self.stack.addWidget(self.table)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(head)
        left_layout.addWidget(self.stack, 1)

        self.details_title = QLabel("Select a job to see its details and output.")
        self.details_title.setWordWrap(True)
        self.details_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setHorizontalSpacing(12)
        for name, tip in (("Runs", "The command line, or the render's output file"),
                          ("Needs", "What the job needs free on its runner"),
                          ("Timing", "When it was queued, started and ended"),
                          ("Outcome", "Exit code and error, or why it is still queued")):
            value = QLabel()
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            self.facts[name] = value
            form.addRow(f"{name}:", value)
        self.artifacts = QComboBox()
        self.artifacts.setToolTip("Files the job produced (a render job's WAV)")
        self.save_artifact_button = QPushButton("Save as…")
        self.save_artifact_button.setToolTip("Download the chosen file from the hub")
        self.save_artifact_button.clicked.connect(self.ask_save_artifact)
        self.artifacts_row = QWidget()
        artifacts_layout = QHBoxLayout(self.artifacts_row)
        artifacts_layout.setContentsMargins(0, 0, 0, 0)
        artifacts_layout.addWidget(self.artifacts, 1)
        artifacts_layout.addWidget(self.save_artifact_button)
        form.addRow("Files:", self.artifacts_row)
        self.artifacts_row.hide()
        self._form = form
        self.log_status = QLabel()
        self.log_status.setObjectName("jobLogStatus")
        self.log_status.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setObjectName("jobLog")
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        self.log.setToolTip("The selected job's output (stdout and stderr), live while it runs")
        self.log.setMinimumHeight(80)
        log_head = QHBoxLayout()
        log_head.addWidget(QLabel("<b>Output</b>"))
        log_head.addWidget(self.log_status, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        right_layout.addWidget(self.details_title)
        right_layout.addLayout(form)
        right_layout.addLayout(log_head)
        right_layout.addWidget(self.log, 1)
        right.setMinimumWidth(300)

        self.details = right
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._show_facts(None)
        self.details.hide()

    # -- the table --------------------------------------------------------------------

    def set_jobs(self, jobs: list[dict[str, Any]]) -> None:
        selected = self.selected_job_id()
        # A reset model drops the selection for a moment; following the log must not
        # stop and start again for that, so selection changes wait until it is restored.
        self._resetting = True
        try:
            self.model.set_jobs(jobs)
            if selected is not None and self.selected_job_id() != selected:
                self.select_job(selected)
        finally:
            self._resetting = False
        self.stack.setCurrentIndex(1 if self.model.row_count() else 0)
        self.details.setVisible(self.model.row_count() > 0)  # the help gets the width
        counts = self.model.counts()
        active = sum(counts.get(s, 0) for s in ACTIVE)
        self.title.setText(f"<b>Jobs ({self.model.row_count()})</b>"
                           + (f" — {active} queued or running" if active else ""))
        self.show_selected()

    def select_job(self, job_id: str) -> bool:
        return select_record(self.table, self.model, job_id)

    def selected_job_id(self) -> str | None:
        return selected_record_id(self.table, self.model)

    def selected_job(self) -> dict[str, Any] | None:
        return self.model.find(self.selected_job_id())

    def _on_selection(self, *_args: object) -> None:
        if not self._resetting:
            self.show_selected()

    def show_selected(self) -> None:
        job = self.selected_job()
        self.cancel_button.setEnabled(accepts(job, "cancel"))
        self._show_facts(job)
        self._show_log(job)

    def _show_facts(self, job: dict[str, Any] | None) -> None:
        for label in self.facts.values():
            label.setVisible(job is not None)
            row_label = self._form.labelForField(label)
            if row_label is not None:
                row_label.setVisible(job is not None)
        files_label = self._form.labelForField(self.artifacts_row)
        if job is None:
            self.details_title.setText("Select a job to see its details and output.")
            self.artifacts_row.hide()
            if files_label is not None:
                files_label.hide()
            return
        state = str(job.get("state"))
        where = f" on {job['runner']}" if job.get("runner") else ""
        self.details_title.setText(
            f"<b>{job['id']}</b> · {job.get('kind')} · "
            f"<b style='color:{state_colour(state)}'>{state_word(state)}</b>{where}"
            + (f"<br>{escape(STATE_MEANINGS[state])}"
               if state not in ("running", "succeeded") and state in STATE_MEANINGS else ""))
        self.facts["Runs"].setText(escape(what_text(job)))
        timeout = job.get("timeout_s")
        self.facts["Needs"].setText(needs_text(dict(job.get("needs") or {}))
                                    + (f"; timeout {float(timeout):g} s" if timeout else ""))
        timing = [f"queued {format_timestamp(job.get('created_at'))}"]
        if job.get("started_at"):
            timing.append(f"started {format_timestamp(job['started_at'])}")
        if job.get("ended_at"):
            timing.append(f"ended {format_timestamp(job['ended_at'])}")
        duration = duration_text(job, self.model.now())
        self.facts["Timing"].setText(", ".join(timing) + (f" ({duration})" if duration else ""))
        self.facts["Outcome"].setText(escape(result_text(job)) or "—")
        names = [str(n) for n in job.get("artifacts") or []]
        if names != [self.artifacts.itemText(i) for i in range(self.artifacts.count())]:
            self.artifacts.clear()
            self.artifacts.addItems(names)
        self.artifacts_row.setVisible(bool(names))
        if files_label is not None:
            files_label.setVisible(bool(names))

    # -- the output -------------------------------------------------------------------

    def _show_log(self, job: dict[str, Any] | None) -> None:
        job_id = str(job["id"]) if job is not None else None
        state = str(job.get("state")) if job is not None else ""
        if job_id is not None and job_id == self.log_job:
            if state in ENDED and self.following is None and not self._log_complete:
                self._fetch_whole(job_id)  # it ended while nobody followed it
            return
        self._stop_following()
        self.log_job = job_id
        self._log_complete = False
        self.log.clear()
        if job_id is None:
            self.log_status.clear()
            return
        if state in ENDED:
            self._fetch_whole(job_id)
        else:
            self._follow(job_id, state)

    def _fetch_whole(self, job_id: str) -> None:
        self._log_complete = True
        generation = self._generation
        self.log_status.setText("loading…")

        def show(text: str) -> None:
            if generation == self._generation and self.log_job == job_id:
                self.log.setPlainText(text)
                self.log.moveCursor(QTextCursor.MoveOperation.End)
                self.log_status.setText("complete" if text else "complete: the job printed "
                                        "nothing")

        self.commands.run(f"Output of {job_id}", self.bridge.job_log(job_id), on_done=show)

    def _follow(self, job_id: str, state: str) -> None:
        self._generation += 1
        generation = self._generation
        stop = asyncio.Event()
        self._follow_stop = stop
        self.following = job_id
        self.log_status.setText("following live…" if state == "running" else
                                "waiting for the job to start; its output appears here live")

        def on_output(text: str) -> None:
            if generation != self._generation:
                return
            self.log_status.setText("following live…")
            self._append(text)

        async def follow() -> None:
            end: dict[str, Any] | None = None
            error: str | None = None
            try:
                end = await self.bridge.follow_job_log(job_id, on_output, stop=stop)
            except ClientError as exc:
                error = exc.message
            except Exception as exc:  # the stream broke: say so where the output is
                error = f"{type(exc).__name__}: {exc}"
            if generation != self._generation:
                return
            self.following = None
            if error is not None:
                self.log_status.setText(f"stopped following: {error}")
            elif end is not None:
                self._log_complete = True
                code = end.get("exit_code")
                self.log_status.setText(
                    f"complete: {state_word(str(end.get('state')))}"
                    + (f", exit code {code}" if code is not None else ""))

        task = asyncio.get_running_loop().create_task(follow(), name=f"follow-{job_id}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    def _append(self, text: str) -> None:
        """Add output at the end; keep the view at the bottom only if it was there."""
        bar = self.log.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.log.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _stop_following(self) -> None:
        self._generation += 1
        if self._follow_stop is not None:
            self._follow_stop.set()
        self._follow_stop = None
        self.following = None

    async def close_streams(self, grace_s: float = 3.0) -> None:
        """Stop the follower and wait for it to notice (at its next read timeout)."""
        self._stop_following()
        await wait_for_followers(set(self._followers), grace_s)

    # -- commands ---------------------------------------------------------------------

    def open_submit(self) -> SubmitJobDialog:
        if self.submit_dialog is None:
            self.submit_dialog = SubmitJobDialog(self.bridge, self.commands, self)
            self.submit_dialog.submitted.connect(self._submitted)
        self.submit_dialog.show()
        self.submit_dialog.raise_()
        self.submit_dialog.activateWindow()
        return self.submit_dialog

    def _submitted(self, job: dict[str, Any]) -> None:
        jobs = [j for j in self.model.jobs() if j["id"] != job["id"]] + [job]
        self.set_jobs(jobs)
        self.select_job(str(job["id"]))

    def cancel_selected(self) -> asyncio.Task[Any] | None:
        job = self.selected_job()
        if job is None or not accepts(job, "cancel"):
            return None
        self.cancel_button.setEnabled(False)
        job_id = str(job["id"])

        def done(view: dict[str, Any]) -> None:
            jobs = [view if j["id"] == job_id else j for j in self.model.jobs()]
            self.set_jobs(jobs)

        return self.commands.run(f"Cancel {job_id}", self.bridge.cancel_job(job_id),
                                 on_done=done)

    def ask_save_artifact(self) -> None:
        job = self.selected_job()
        name = self.artifacts.currentText()
        if job is None or not name:
            return
        dialog = QFileDialog(self, f"Save {name} as", str(Path.home() / name))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.fileSelected.connect(
            lambda target: self.save_artifact(str(job["id"]), name, Path(target)))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def save_artifact(self, job_id: str, name: str, target: Path) -> asyncio.Task[Any]:
        return self.commands.run(f"Save {name}",
                                 self.bridge.save_artifact(job_id, name, target))
