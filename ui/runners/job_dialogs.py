"""The "Submit job…" dialog: kind, what to run, its needs and timeout, as a form.

Non-modal (``show()``, never ``exec()``: a nested event loop would stall the shared asyncio
loop), and it keeps what was typed until it is closed. It builds the ``POST
/api/v1/jobs`` body (docs/runners.md). What the form can check — a command line that
does not split, a spec file that is not JSON — is caught before sending; what only the
hub knows comes back as a 422 whose ``loc`` names the field (``needs.labels.0``,
``payload.spec.tracks``), and is shown under that field, in the form's words.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner

ERROR_COLOUR = "#cf222e"
OK_COLOUR = "#2da44e"
#: What the hub's name pattern allows, in words (backend/protocol NAME_PATTERN).
LABEL_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit"


def read_spec(text: str) -> Any:
    """Parse the spec file named ``text``; :class:`_FieldProblem` says what is wrong."""
    if not text:
        raise _FieldProblem("spec", "Choose the task spec file to render")
    path = Path(text).expanduser()
    try:
        raw = path.read_text()
    except OSError as exc:
        raise _FieldProblem("spec", f"Cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _FieldProblem("spec", f"{path.name} is not JSON: {exc}") from None


class _Field(QWidget):
    """A form field with its error line under it (hidden while there is no error)."""

    def __init__(self, editor: QWidget, extra: QWidget | None = None) -> None:
        super().__init__()
        self.editor = editor
        self._tip = editor.toolTip()  # given back when the error is cleared
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {ERROR_COLOUR}")
        self.error.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(editor, 1)
        if extra is not None:
            row.addWidget(extra)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.error)

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        self.editor.setStyleSheet(
            f"{type(self.editor).__name__} {{ border: 1px solid {ERROR_COLOUR}; }}"
            if message else "")
        self.editor.setToolTip(message or self._tip)
        window = self.window()
        if message and window is not None and window.isVisible():
            # A wrapped error line needs height the dialog did not have: grow it.
            if (layout := window.layout()) is not None:
                layout.activate()
            hint = window.sizeHint().height()
            if hint > window.height():
                window.resize(window.width(), hint)


def _path(loc: Sequence[Any]) -> list[Any]:
    return list(loc[1:] if loc and loc[0] == "body" else loc)


class SubmitJobDialog(QDialog):
    """Kind, what to run, its needs and timeout; errors shown at the field they concern."""

    #: The hub accepted the job: the job as it was stored.
    submitted = Signal(object)

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.setWindowTitle("Submit a job")
        self.setModal(False)
        self.setMinimumWidth(560)

        self.kind = QComboBox()
        self.kind.addItem("Command: a program with its arguments", "command")
        self.kind.addItem("Render: an audio task spec, rendered to a WAV file", "render")
        self.kind.setToolTip("What the runner does with the job")
        self.command_edit = QLineEdit()
        self.command_edit.setPlaceholderText("e.g. python3 bounce.py --take 3")
        self.command_edit.setToolTip(
            "Split into arguments like a shell would, but run without a shell (for pipes "
            "or redirections write sh -c '…'). Lines like 'progress 0.42' in its output "
            "move the progress bar.")
        self.cwd_edit = QLineEdit()
        self.cwd_edit.setPlaceholderText("optional; default: the job's own folder")
        self.cwd_edit.setToolTip("The directory on the runner to start it in")
        self.spec_edit = QLineEdit()
        self.spec_edit.setPlaceholderText("a task spec (.json) on this machine")
        self.spec_edit.setToolTip("The spec is read here and sent with the job; its "
                                  "instances must be dynamic ones (runners have no drivers)")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose the spec file")
        browse.clicked.connect(self._browse_spec)
        self.output_edit = QLineEdit("render.wav")
        self.output_edit.setToolTip("The name of the rendered file (the job's artifact)")
        self.format = QComboBox()
        self.format.addItem("24-bit WAV", "wav24")
        self.format.addItem("32-bit float WAV", "float32")
        self.cpus = QDoubleSpinBox()
        self.cpus.setRange(0, 4096)
        self.cpus.setDecimals(1)
        self.cpus.setSingleStep(0.5)
        self.cpus.setValue(1.0)
        self.cpus.setToolTip("CPU threads the job needs free on the runner (0: any)")
        self.memory = QSpinBox()
        self.memory.setRange(0, 16 * 1024 * 1024)
        self.memory.setSingleStep(256)
        self.memory.setSuffix(" MB")
        self.memory.setSpecialValueText("any")
        self.memory.setToolTip("Memory the job needs free on the runner")
        self.gpus = QSpinBox()
        self.gpus.setRange(0, 64)
        self.gpus.setSpecialValueText("none")
        self.gpus.setToolTip("GPUs the job needs")
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("optional, e.g. linux,gpu")
        self.labels.setToolTip(f"Only runners with all these labels take it ({LABEL_RULE})")
        self.timeout = QSpinBox()
        self.timeout.setRange(0, 30 * 24 * 3600)
        self.timeout.setSuffix(" s")
        self.timeout.setSpecialValueText("none")
        self.timeout.setToolTip("Stopped and marked timed out after this long (0: never)")

        self.fields: dict[str, _Field] = {
            "kind": _Field(self.kind), "command": _Field(self.command_edit),
            "cwd": _Field(self.cwd_edit), "spec": _Field(self.spec_edit, browse),
            "output": _Field(self.output_edit), "format": _Field(self.format),
            "cpus": _Field(self.cpus), "memory": _Field(self.memory),
            "gpus": _Field(self.gpus), "labels": _Field(self.labels),
            "timeout": _Field(self.timeout),
        }
        command_page = QWidget()
        command_form = QFormLayout(command_page)
        command_form.setContentsMargins(0, 0, 0, 0)
        command_form.addRow("Command line:", self.fields["command"])
        command_form.addRow("Working directory:", self.fields["cwd"])
        render_page = QWidget()
        render_form = QFormLayout(render_page)
        render_form.setContentsMargins(0, 0, 0, 0)
        render_form.addRow("Spec file:", self.fields["spec"])
        render_form.addRow("Output name:", self.fields["output"])
        render_form.addRow("Format:", self.fields["format"])
        self.pages = QStackedWidget()
        self.pages.addWidget(command_page)
        self.pages.addWidget(render_page)
        self.kind.currentIndexChanged.connect(self.pages.setCurrentIndex)

        needs = QGroupBox("Needs (the hub offers the job only to a runner that has them free)")
        needs_form = QFormLayout(needs)
        needs_form.addRow("CPUs:", self.fields["cpus"])
        needs_form.addRow("Memory:", self.fields["memory"])
        needs_form.addRow("GPUs:", self.fields["gpus"])
        needs_form.addRow("Labels:", self.fields["labels"])

        top = QFormLayout()
        top.addRow("Kind:", self.fields["kind"])
        bottom = QFormLayout()
        bottom.addRow("Timeout:", self.fields["timeout"])

        self.status = QLabel()
        self.status.setObjectName("submitStatus")
        self.status.setWordWrap(True)
        self.submit_button = QPushButton("Submit")
        self.submit_button.setDefault(True)
        self.submit_button.setToolTip("Queue the job on the hub")
        self.submit_button.clicked.connect(self.submit)
        close = QPushButton("Close")
        close.setToolTip("Close without submitting")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.submit_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages)
        layout.addWidget(needs)
        layout.addLayout(bottom)
        layout.addLayout(buttons)
        for name, edit in (("command", self.command_edit), ("cwd", self.cwd_edit),
                           ("spec", self.spec_edit), ("output", self.output_edit),
                           ("labels", self.labels)):
            edit.textChanged.connect(lambda _t, n=name: self.fields[n].set_error(None))

    # -- building the request ---------------------------------------------------------

    def label_list(self) -> list[str]:
        return [part.strip() for part in self.labels.text().split(",") if part.strip()]

    def _request(self, spec: Any = None) -> dict[str, Any] | None:
        """The job body from the form, or None after marking what is wrong."""
        kind = str(self.kind.currentData())
        needs: dict[str, Any] = {"cpus": self.cpus.value(), "memory_mb": self.memory.value(),
                                 "gpus": self.gpus.value(), "labels": self.label_list()}
        request: dict[str, Any] = {"kind": kind, "needs": needs}
        if self.timeout.value():
            request["timeout_s"] = self.timeout.value()
        if kind == "command":
            try:
                argv = shlex.split(self.command_edit.text())
            except ValueError as exc:
                self.fields["command"].set_error(f"Cannot split this command line: {exc} "
                                                 "(close the quote or escape it)")
                return None
            if not argv:
                self.fields["command"].set_error("Enter the program to run and its "
                                                 "arguments")
                return None
            payload: dict[str, Any] = {"argv": argv}
            if self.cwd_edit.text().strip():
                payload["cwd"] = self.cwd_edit.text().strip()
        else:
            payload = {"spec": spec, "format": self.format.currentData(),
                       "name": self.output_edit.text().strip()}
        request["payload"] = payload
        return request

    async def _read_spec(self) -> Any:
        """The spec file's JSON, read in a worker thread (it may be on a slow share)."""
        return await asyncio.to_thread(read_spec, self.spec_edit.text().strip())

    # -- submitting -------------------------------------------------------------------

    def submit(self) -> asyncio.Task[Any] | None:
        """Check what can be checked here, then send; the answer is shown in the dialog."""
        for field in self.fields.values():
            field.set_error(None)
        self._status("", None)
        render = self.kind.currentData() == "render"
        if not render and self._request() is None:
            self._status("Fix the marked field.", False)
            return None
        self.submit_button.setEnabled(False)
        self._status("Submitting…", None)

        async def send() -> dict[str, Any] | ClientError | _FieldProblem:
            try:
                request = self._request(await self._read_spec() if render else None)
                if request is None:
                    return _FieldProblem("command", "")
                return await self.bridge.submit_job(request)
            except (ClientError, _FieldProblem) as exc:
                return exc
            finally:
                self.submit_button.setEnabled(True)

        return self.commands.run("Submit job", send(), on_done=self._on_answer)

    def _on_answer(self, answer: dict[str, Any] | ClientError | _FieldProblem) -> None:
        if isinstance(answer, _FieldProblem):
            if answer.message:
                self.fields[answer.field].set_error(answer.message)
            self._status("Fix the marked field.", False)
            return
        if isinstance(answer, ClientError):
            self.show_refusal(answer)
            return
        self._status(f"Queued as {answer['id']}.", True)
        self.submitted.emit(answer)
        self.close()

    def show_refusal(self, error: ClientError) -> None:
        """A 422's errors at their fields; anything else as one line in the dialog."""
        detail = error.detail
        if error.status != 422 or not isinstance(detail, list):
            self._status(f"The hub refused the job ({error.status}): {error.message}", False)
            return
        placed = 0
        for item in detail:
            if not isinstance(item, dict):
                continue
            path = _path(item.get("loc") or [])
            field = self.field_for(path)
            self.fields[field].set_error(self.describe(path, str(item.get("msg", ""))))
            placed += 1
        noun = "field" if placed == 1 else "fields"
        self._status(f"The hub refused the job (422): fix the marked {noun}.", False)

    def field_for(self, path: Sequence[Any]) -> str:
        """Which form field a hub error location (``needs.cpus``, ``payload.argv``) is."""
        head = path[0] if path else ""
        sub = path[1] if len(path) > 1 else None
        if head == "payload":
            return {"argv": "command", "env": "command", "shell": "command", "cwd": "cwd",
                    "spec": "spec", "name": "output", "format": "format"}.get(
                str(sub), "command" if self.kind.currentData() == "command" else "spec")
        if head == "needs":
            return {"cpus": "cpus", "memory_mb": "memory", "disk_mb": "memory",
                    "gpus": "gpus"}.get(str(sub), "labels")
        return {"timeout_s": "timeout"}.get(str(head), "kind")

    def describe(self, path: Sequence[Any], message: str) -> str:
        """The hub's message, in the form's words where it names a value the form holds."""
        if len(path) >= 3 and path[:2] == ["needs", "labels"] and isinstance(path[2], int):
            labels = self.label_list()
            value = labels[path[2]] if path[2] < len(labels) else "?"
            return f"'{value}' is not a valid label: use {LABEL_RULE}"
        if len(path) >= 2 and path[:2] == ["payload", "spec"]:
            where = ".".join(str(p) for p in path[2:]) or "the spec"
            return f"{where}: {message}"
        return message

    def _status(self, text: str, ok: bool | None) -> None:
        colour = {True: OK_COLOUR, False: ERROR_COLOUR, None: ""}[ok]
        self.status.setStyleSheet(f"color: {colour};" if colour else "")
        self.status.setText(text)

    def _browse_spec(self) -> None:
        dialog = QFileDialog(self, "Choose a task spec to render", self.spec_edit.text(),
                             "Task specs (*.json)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.spec_edit.setText)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()


class _FieldProblem(Exception):
    """Something the form found before sending: ``field`` and what to tell the operator."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
