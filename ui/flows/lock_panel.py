"""The lock panel: a locked run's prompt, a form from the lock's schema, the time left before
the flow stops waiting, and Submit, which shows "released" or the flow's denial inline and
keeps what was typed. Answering is a change of state: on a read-only console the form and
Submit are greyed out with the reason, and the heading says who may answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from PySide6.QtCore import (
    Qt,
    QTimer,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backend.client import Verdict
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.flows.model import Run
from ui.flows.schema_form import FieldError, SchemaForm


def format_left(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LockPanel(QFrame):
    """The open lock of the selected run: prompt, form, countdown, Submit and verdict."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.run: Run | None = None
        self.lock: dict[str, Any] | None = None
        self.setObjectName("lockPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#lockPanel { border: 2px solid #6a1b9a; border-radius: 6px;"
                           " background: palette(base); }")
        self.heading = QLabel("<b>Locked: the run is waiting for your answer</b>")
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        self.prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form = SchemaForm()
        self.countdown = QLabel()
        self.countdown.setObjectName("lockCountdown")
        self.countdown.setWordWrap(True)
        self.countdown.setToolTip("The flow stops waiting for a candidate at this deadline "
                                  "(no-candidate timeout); after a Submit it has the release "
                                  "timeout to answer")
        self.submit_button = QPushButton("Submit")
        self.submit_button.setToolTip("Send these values to the flow as the lock's candidate")
        self.submit_button.clicked.connect(self.submit)
        self.verdict = QLabel()
        self.verdict.setObjectName("lockVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.submit_button)
        row.addWidget(self.verdict, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.prompt)
        layout.addWidget(self.form)
        layout.addWidget(self.countdown)
        layout.addLayout(row)
        bridge.access.guard(self.form, self.submit_button)
        if bridge.access.read_only:
            self.heading.setText("<b>Locked: the run is waiting for an operator's answer</b>")
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self.hide()

    def show_lock(self, run: Run | None) -> None:
        locks = run.view.get("locks") if run is not None else None
        lock = dict(locks[0]) if locks else None
        same = (lock is not None and self.lock is not None and run is self.run
                and lock.get("lid") == self.lock.get("lid"))
        self.run, self.lock = run, lock
        if lock is None:
            self._timer.stop()
            self.hide()
            return
        if not same:  # a new lock: a fresh form; the same lock keeps what was typed
            self.prompt.setText(str(lock.get("prompt", "")))
            self.form.set_schema(dict(lock.get("schema") or {}))
            self.verdict.clear()
        self.submit_button.setEnabled(True)
        self._tick()
        self._timer.start()
        self.show()

    def _tick(self) -> None:
        if self.lock is None:
            return
        deadline = float(self.lock.get("deadline") or 0)
        release = float(self.lock.get("release_timeout") or 0)
        left = deadline - time.time()
        self.countdown.setText(
            f"Answer within <b>{format_left(left)}</b> (no-candidate timeout); after "
            f"Submit the flow has {release:g} s to release or deny it."
            if left > 0 else "The no-candidate timeout has passed; the flow has stopped "
            "waiting.")

    def submit(self) -> asyncio.Task[Any] | None:
        if self.run is None or self.lock is None:
            return None
        try:
            candidate = self.form.value()
        except FieldError as exc:
            self._verdict(f"✗ {exc.field}: {exc.message}", ok=False)
            return None
        run, lid = self.run, str(self.lock["lid"])
        node = str(self.lock.get("node") or run.node)
        fid = str(self.lock.get("fid") or run.fid)
        self.submit_button.setEnabled(False)
        self._verdict("Submitted; waiting for the flow's verdict…", ok=None)

        async def send() -> Verdict:
            try:
                return await self.bridge.submit_candidate(node, fid, lid, candidate)
            finally:
                self.submit_button.setEnabled(True)

        return self.commands.run(f"Submit to {run.flow}", send(), on_done=self._on_verdict)

    def _on_verdict(self, answer: Verdict) -> None:
        status, body = answer.status, answer.body
        if status == 200:
            self._verdict("✓ Released: the flow accepted these values.", ok=True)
            return
        reason = body.get("reason") or body.get("detail") if isinstance(body, dict) else body
        if isinstance(reason, list | dict):
            reason = json.dumps(reason)
        word = "Denied" if isinstance(body, dict) and body.get("reason") else "Refused"
        self._verdict(f"✗ {word} ({status}): {reason}", ok=False)

    def _verdict(self, text: str, ok: bool | None) -> None:
        colour = {True: "#2e7d32", False: "#c62828", None: ""}[ok]
        self.verdict.setStyleSheet(f"color: {colour}; font-weight: bold;" if colour else "")
        self.verdict.setText(text)
