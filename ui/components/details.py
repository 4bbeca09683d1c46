"""The selected component's panel: its facts, its merged config, and its stored overrides.

Two configs belong to a component: the **merged** one it runs with (its own static config
with the stored one laid over it), and the **stored** overrides the hub keeps for its id.
The merged one is shown read-only and follows the bridge's snapshots; the stored one is
edited here. The editor checks the JSON as the operator types (a parse error names its
line and column, Apply stays disabled), and Apply stores it with
``PUT /api/v1/configs/{id}`` through the bridge's HTTP client, so it works the same against a
remote hub. The hub merges it and pushes the merge to the agent live; its next snapshot
shows the new merged config above the editor. What the hub refuses (a 422, say) is shown
under the editor, with the text kept for fixing. A read-only console (a viewer token)
shows the stored overrides without letting them be edited: the editor is read-only and
Apply greyed out, each saying why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError
from ui.core import health_style
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.formatting import format_rtt, format_timestamp, relative_time
from ui.core.typography import mute, title_font

#: Events after which the stored config on the hub may differ from the one shown.
CONFIG_EVENTS = frozenset({"component.config", "config.stored"})
_OK, _ERROR, _NOTE = "#2e7d32", "#c62828", "#9a6700"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NON_JSON_NUMBER = re.compile(r"-?Infinity|NaN")


@dataclass(frozen=True)
class Checked:
    """The editor's text checked: the value, or what is wrong and where (a char span)."""

    value: Any = None
    error: str | None = None
    span: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _line_column(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def check_config_text(text: str) -> Checked:
    """Parse the stored-config text as strict JSON; say where it breaks, if it does.

    Strict: Python's parser takes ``NaN`` and ``Infinity``, but JSON (and the hub's HTTP
    client) does not, so they are reported here rather than failing on Apply. Whether the
    value is acceptable (an object at the top level) is the hub's call, and its refusal is
    shown as it words it.
    """
    if not text.strip():
        return Checked(error="Empty: type {} to store no overrides", span=None)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Checked(error=f"Line {exc.lineno}, column {exc.colno}: not valid JSON "
                             f"({exc.msg})", span=(exc.pos, min(len(text), exc.pos + 1)))
    masked = _STRING.sub(lambda m: " " * len(m.group()), text)  # NaN inside a string is fine
    bad = _NON_JSON_NUMBER.search(masked)
    if bad is not None:
        line, column = _line_column(text, bad.start())
        return Checked(error=f"Line {line}, column {column}: {bad.group()} is not JSON; "
                             "use a number or null", span=(bad.start(), bad.end()))
    return Checked(value=value)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def refusal_text(exc: ClientError) -> str:
    """The hub's refusal in words: a 422's ``loc``/``msg`` list as ``body: msg``."""
    detail = exc.detail
    if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
        parts = []
        for item in detail:
            loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        words = "; ".join(parts)
        if any("dict" in str(d.get("type", "")) for d in detail):
            words += ". Stored config is a JSON object at the top level: { \"key\": value }"
        return f"The hub refused it ({exc.status}): {words}"
    if isinstance(detail, str):
        return f"The hub refused it ({exc.status}): {detail}"
    return f"The hub refused it: {exc.message}"


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    mute(label)
    return label


def _code_editor(tip: str) -> QPlainTextEdit:
    editor = QPlainTextEdit()
    editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    editor.setToolTip(tip)
    editor.setMinimumHeight(70)
    return editor


class StoredConfigEditor(QWidget):
    """The stored overrides of one component: edit, check as you type, Apply, Revert."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._actions = actions
        self._access = bridge.access
        self.component_id: str | None = None
        #: The stored config as last read from (or accepted by) the hub, as text.
        self.baseline: str | None = None
        self.checked = Checked(error="Nothing loaded")
        self.applying = False
        self._load_seq = 0
        self._drafts: dict[str, str] = {}
        self._stale = False  # the hub's copy changed under unapplied edits

        self.editor = _code_editor(
            "The stored overrides as JSON; checked as you type. Ctrl+Return applies them.")
        self.editor.setObjectName("storedConfigEditor")
        self.editor.textChanged.connect(self._on_text_changed)
        self.status = QLabel()
        self.status.setObjectName("storedConfigStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Store these overrides on the hub (PUT /api/v1/configs/"
                                     "<id>); the new merge is pushed to the agent live "
                                     "(Ctrl+Return)")
        self.apply_button.clicked.connect(self.apply)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Discard the edits: show the stored overrides as the "
                                      "hub has them")
        self.revert_button.clicked.connect(self.revert)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self.editor)
        shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        shortcut.activated.connect(self.apply)

        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.revert_button, 0, Qt.AlignmentFlag.AlignTop)
        buttons.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.editor, 1)
        layout.addLayout(buttons)
        self._access.guard(self.apply_button)
        if self._access.read_only:  # readable and scrollable, not editable, and why
            self.editor.setToolTip(f"{self._access.reason}.\n\nThe stored overrides as JSON.")
        self._refresh_controls()

    # -- what the operator sees -------------------------------------------------------

    def text(self) -> str:
        return self.editor.toPlainText()

    def dirty(self) -> bool:
        return self.baseline is not None and self.text() != self.baseline

    def set_component(self, component_id: str | None) -> None:
        """Show this component's stored config (read from the hub), keeping drafts."""
        if component_id == self.component_id:
            return
        if self.component_id is not None and self.dirty():
            self._drafts[self.component_id] = self.text()  # back to it later, unapplied
        self.component_id = component_id
        self.baseline = None
        self._stale = False
        self._set_text("")
        if component_id is not None:
            self.reload()
        self._refresh_controls()

    def reload(self) -> None:
        """Read the stored config again; unapplied edits are kept (and said to be stale)."""
        if self.component_id is None:
            return
        self._load_seq += 1
        self._actions.run(f"read the stored config of {self.component_id}",
                          self._load(self.component_id, self._load_seq))
        if self.baseline is None:
            self._show("Reading the stored config from the hub…", None)

    def note_event(self, event: Mapping[str, Any]) -> None:
        """Another client (or this one) changed the stored config: read it again."""
        if (event.get("type") in CONFIG_EVENTS and event.get("subject") == self.component_id
                and not self.applying):
            self.reload()

    def apply(self) -> None:
        """Store the text on the hub (if it is valid and changed); the result shows inline."""
        if not self.apply_button.isEnabled() or self.component_id is None:
            return
        self.applying = True
        self._show("Applying…", None)
        self._refresh_controls()
        self._actions.run(f"apply the config of {self.component_id}",
                          self._put(self.component_id, self.checked.value))

    def revert(self) -> None:
        """Drop the edits: the hub's stored config again (read anew if it changed)."""
        if self.component_id is not None:
            self._drafts.pop(self.component_id, None)
        self._stale = False
        if self.baseline is None:  # never read (the hub did not answer): try again
            self.reload()
            return
        self._set_text(self.baseline)  # the newest the hub has: a change under the edits
        self._validate()               # was read into the baseline when it happened

    # -- talking to the hub -----------------------------------------------------------

    async def _load(self, component_id: str, seq: int) -> None:
        try:
            stored = await self._bridge.stored_config(component_id)
        except ClientError as exc:
            if seq == self._load_seq and component_id == self.component_id:
                self._show(f"Could not read the stored config: {exc.message}. "
                           "Revert tries again.", False)
                self._refresh_controls()
            return
        if seq != self._load_seq or component_id != self.component_id:
            return  # the operator moved on, or a newer read is under way
        text = pretty(stored)
        if text == self.baseline and not self.dirty():
            return  # nothing new (our own apply, echoed by its event): keep what is shown
        if self.baseline is not None and self.dirty():
            self._stale = self._stale or text != self.baseline
            self.baseline = text
            self._validate()
            return
        self.baseline = text
        draft = self._drafts.pop(component_id, None)
        self._set_text(draft if draft is not None and draft != text else text)
        self._validate()

    async def _put(self, component_id: str, value: Any) -> None:
        try:
            result = await self._bridge.put_config(component_id, value)
        except ClientError as exc:
            self.applying = False
            if component_id == self.component_id:
                self._show(refusal_text(exc), False)
                self._refresh_controls()
            return
        self.applying = False
        if component_id != self.component_id:
            return
        self._load_seq += 1  # a read started before the write would show the old one
        self._stale = False
        self.baseline = pretty(result.get("stored", value))
        self._set_text(self.baseline)
        self._validate()
        pushed = (f"pushed to {component_id} live" if result.get("pushed")
                  else f"{component_id} is not connected: it gets the merge when it "
                       "registers again")
        self._show(f"✓ Applied: stored on the hub and {pushed}.", True)

    # -- checking ---------------------------------------------------------------------

    def _on_text_changed(self) -> None:
        if self.baseline is not None:
            self._validate()

    def _validate(self) -> None:
        text = self.text()
        self.checked = check_config_text(text)
        if not self.checked.ok:
            self._show(str(self.checked.error), False, self.checked.span)
        elif self._stale:
            self._show("The stored config changed on the hub while you were editing: "
                       "Revert loads it, Apply overwrites it.", None, colour=_NOTE)
        elif self.dirty():
            self._show("✓ Valid JSON, not applied yet: Apply stores it, Revert discards it.",
                       True)
        else:
            self._show("The stored overrides as the hub has them.", None)
        self._refresh_controls()

    def _refresh_controls(self) -> None:
        loaded = self.component_id is not None and self.baseline is not None
        self.editor.setReadOnly(not loaded or self.applying or self._access.read_only)
        self.editor.setPlaceholderText("" if loaded else "Not loaded")
        self.apply_button.setEnabled(loaded and not self.applying and self.checked.ok
                                     and (self.dirty() or self._stale))
        self.revert_button.setEnabled(self.component_id is not None and not self.applying
                                      and (self.dirty() or self._stale or not loaded))

    def _set_text(self, text: str) -> None:
        if self.editor.toPlainText() != text:
            self.editor.setPlainText(text)

    def _show(self, message: str, ok: bool | None, span: tuple[int, int] | None = None,
              colour: str | None = None) -> None:
        colour = colour or {True: _OK, False: _ERROR, None: ""}[ok]
        self.status.setStyleSheet(f"color: {colour}" if colour else "")
        self.status.setText(message)
        selections: list[QTextEdit.ExtraSelection] = []
        if span is not None:
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(QColor("#f8d7da"))
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(QColor(_ERROR))
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(min(span[0], len(self.text())))
            cursor.setPosition(min(max(span[0] + 1, span[1]), len(self.text())),
                               QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor  # type: ignore[misc]
            selection.format = fmt  # type: ignore[misc]
            selections.append(selection)
        self.editor.setExtraSelections(selections)


class ComponentDetails(QWidget):
    """The selected component's facts, merged config (read-only) and stored overrides."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.component_id: str | None = None
        self._stack = QStackedWidget()

        placeholder = QLabel("Select a component to see its health and config.")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setWordWrap(True)
        mute(placeholder)
        self._stack.addWidget(placeholder)

        page = QWidget()
        self.title = QLabel()
        self.title.setFont(title_font(self.title, 1.3))
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.row_note = _hint("")
        self.row_note.setTextFormat(Qt.TextFormat.PlainText)
        self.facts: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(3)
        for name, tip in (
            ("Kind", "What the component is"),
            ("Health", "The hub's view of it; hover the Health cell for the rules"),
            ("Connection", "Whether its agent channel to the hub is open now"),
            ("Registered", "When it last registered (each connect registers again)"),
            ("Last seen", "When it last answered a health check or registered"),
            ("Round trip", "Round trip of the last answered health check"),
        ):
            value = QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            self.facts[name] = value
            form.addRow(f"{name}:", value)

        merged_title = QLabel("Merged config")
        merged_title.setFont(title_font(merged_title, 1.0))
        self.merged_hint = _hint("What it runs with: its own config with the stored "
                                 "overrides laid over it (stored values win). Read-only.")
        self.config = _code_editor("The merged config this component runs with, as JSON")
        self.config.setObjectName("mergedConfig")
        self.config.setReadOnly(True)
        merged = QWidget()
        merged_layout = QVBoxLayout(merged)
        merged_layout.setContentsMargins(0, 4, 0, 0)
        merged_layout.setSpacing(3)
        merged_layout.addWidget(merged_title)
        merged_layout.addWidget(self.merged_hint)
        merged_layout.addWidget(self.config, 1)

        read_only = bridge.access.read_only
        self.stored_title = QLabel("Stored overrides (read-only)" if read_only
                                   else "Stored overrides (editable)")
        self.stored_title.setFont(title_font(self.stored_title, 1.0))
        if read_only:
            self.stored_title.setToolTip(bridge.access.reason)
        self.stored_hint = _hint("Kept by the hub for this id; each key wins over the "
                                 "agent's own, and null removes a key.")
        self.stored = StoredConfigEditor(bridge, actions)
        stored = QWidget()
        stored_layout = QVBoxLayout(stored)
        stored_layout.setContentsMargins(0, 4, 0, 0)
        stored_layout.setSpacing(3)
        stored_layout.addWidget(self.stored_title)
        stored_layout.addWidget(self.stored_hint)
        stored_layout.addWidget(self.stored, 1)

        self.configs = QSplitter(Qt.Orientation.Vertical)
        self.configs.setObjectName("configsSplitter")
        self.configs.addWidget(merged)
        self.configs.addWidget(stored)
        self.configs.setChildrenCollapsible(False)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.row_note)
        layout.addLayout(form)
        layout.addWidget(self.configs, 1)
        self._stack.addWidget(page)

        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame_layout = QVBoxLayout(frame)
        frame_layout.setContentsMargins(4, 4, 4, 4)
        frame_layout.addWidget(self._stack)
        heading = QLabel("Selected component")
        heading.setFont(title_font(heading, 1.05))
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        outer.addWidget(heading)
        outer.addWidget(frame, 1)
        self.setMinimumWidth(320)

    def show_component(self, component: Mapping[str, Any] | None, now: float,
                       row_note: str = "") -> None:
        """Show a component (or nothing); ``row_note`` says which of its rows is selected."""
        if component is None:
            self.component_id = None
            self.config.clear()
            self.stored.set_component(None)
            self._stack.setCurrentIndex(0)
            return
        self.component_id = str(component.get("id"))
        state = str(component.get("state"))
        self.title.setText(self.component_id)
        self.row_note.setText(row_note)
        self.row_note.setVisible(bool(row_note))
        self.facts["Kind"].setText(str(component.get("kind", "")))
        self.facts["Health"].setText(f"{health_style.dot_html(state)} "
                                     f"{health_style.label(state)}")
        self.facts["Connection"].setText("connected" if component.get("connected")
                                         else "not connected")
        self.facts["Registered"].setText(format_timestamp(component.get("registered_at")))
        self.facts["Last seen"].setText(
            f"{relative_time(component.get('last_seen'), now)} "
            f"({format_timestamp(component.get('last_seen'))})"
            if component.get("last_seen") is not None else "never"
        )
        self.facts["Round trip"].setText(format_rtt(component.get("rtt_ms")))
        text = pretty(component.get("config") or {})
        if self.config.toPlainText() != text:  # keep the operator's scroll and selection
            self.config.setPlainText(text)
        self.stored.set_component(self.component_id)
        self._stack.setCurrentIndex(1)

    def note_event(self, event: Mapping[str, Any]) -> None:
        self.stored.note_event(event)
