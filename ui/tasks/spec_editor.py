"""The task spec editor: JSON that validates as you type and points at the wrong field.

Validation is the backend's own (:func:`backend.audio.spec.parse_task_spec`, pydantic), run
a moment after the last keystroke; it is pure CPU on a few kilobytes, so it stays on the
GUI thread. Each error's location (pydantic's ``loc``, or the ``tracks[1].chain[0]:``
prefix the spec's cross-checks and the hub's refusals put in their messages) is mapped
back to the characters of the JSON text by :func:`value_spans`, so the editor can
highlight the field and say which line it is on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pydantic import ValidationError
from PySide6.QtCore import Qt, QTimer
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtGui import QColor, QFontDatabase, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTextEdit, QVBoxLayout, QWidget

from backend.audio import TaskSpec, parse_task_spec
from backend.program import resource

Path_ = tuple[str | int, ...]
_WS = re.compile(r"\s*")
_PREFIX = re.compile(r"^([A-Za-z_][\w\-.\[\]]*):\s")
VALIDATE_DELAY_MS = 250
DEMO_SPEC = resource("specs/demo.json")


def value_spans(text: str) -> dict[Path_, tuple[int, int]]:
    """Character spans of every value in a JSON text, by path; partial if it is broken."""
    spans: dict[Path_, tuple[int, int]] = {}
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        match = _WS.match(text, i)
        return match.end() if match else i

    def value(i: int, path: Path_) -> int:
        i = skip(i)
        start = i
        char = text[i:i + 1]
        if char == "{":
            i = skip(i + 1)
            if text[i:i + 1] == "}":
                end = i + 1
            else:
                while True:
                    i = skip(i)
                    key, after = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
                    key_start = i
                    i = skip(after)
                    if text[i:i + 1] != ":":
                        raise ValueError("expected ':'")
                    i = skip(value(i + 1, (*path, key)))
                    spans.setdefault((*path, key, "<key>"), (key_start, after))
                    if text[i:i + 1] == ",":
                        i += 1
                        continue
                    if text[i:i + 1] == "}":
                        end = i + 1
                        break
                    raise ValueError("expected ',' or '}'")
        elif char == "[":
            i = skip(i + 1)
            index = 0
            if text[i:i + 1] == "]":
                end = i + 1
            else:
                while True:
                    i = skip(value(i, (*path, index)))
                    index += 1
                    if text[i:i + 1] == ",":
                        i += 1
                        continue
                    if text[i:i + 1] == "]":
                        end = i + 1
                        break
                    raise ValueError("expected ',' or ']'")
        else:
            _, end = decoder.raw_decode(text, i)
        spans[path] = (start, end)
        return end

    try:
        value(0, ())
    except (ValueError, IndexError):
        pass
    return spans


def path_from_message(message: str) -> str | None:
    """``tracks[1].chain[0]`` from ``"tracks[1].chain[0]: instance ..."``; else None."""
    match = _PREFIX.match(message)
    return match.group(1) if match else None


def locate(text: str, where: Sequence[str | int] | str) -> tuple[int, int] | None:
    """The span of the field at ``where`` (a pydantic loc or a dotted path), or its nearest
    existing parent; dotted names are matched against real keys, so ``driver-1.comp`` is
    found as one instance id."""
    spans = value_spans(text)
    tokens: list[str | int] = []
    if isinstance(where, str):
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", where):
            tokens.append(int(part[1:-1]) if part.startswith("[") else part)
    else:
        tokens = list(where)
    path: Path_ = ()
    best = spans.get(())
    i = 0
    while i < len(tokens):
        token = tokens[i]
        found = False
        if isinstance(token, str):
            for j in range(len(tokens), i, -1):  # longest dotted key first
                parts = tokens[i:j]
                if all(isinstance(p, str) for p in parts):
                    key = ".".join(str(p) for p in parts)
                    if (*path, key) in spans:
                        path, i, found = (*path, key), j, True
                        break
        elif (*path, token) in spans:
            path, i, found = (*path, token), i + 1, True
        if not found:
            break
        best = spans[path]
    return best


def describe(text: str, span: tuple[int, int] | None) -> str:
    if span is None:
        return ""
    line = text.count("\n", 0, span[0]) + 1
    return f"line {line}"


class SpecEditor(QWidget):
    """JSON text, a status line under it, and the wrong field highlighted."""

    #: Emitted after each validation: the spec, or None while it is invalid.
    validated = QtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: TaskSpec | None = None
        self.error_span: tuple[int, int] | None = None
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("specEditor")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setPlaceholderText("Paste or open a task spec (JSON), or load the demo.")
        self.editor.setToolTip("A task spec as JSON; checked as you type")
        self.editor.setMinimumHeight(140)
        self.status = QLabel("Empty spec")
        self.status.setObjectName("specStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(VALIDATE_DELAY_MS)
        self._timer.timeout.connect(self.validate)
        self.editor.textChanged.connect(self._timer.start)

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)
        self.validate()

    def validate(self) -> TaskSpec | None:
        """Check the text now; show the first problem at its field."""
        self._timer.stop()
        text = self.text()
        self.spec = None
        if not text.strip():
            self._show("Empty spec", None, ok=None)
        else:
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                self._show(f"Line {exc.lineno}, column {exc.colno}: not valid JSON "
                           f"({exc.msg})", (exc.pos, min(len(text), exc.pos + 1)), ok=False)
                self.validated.emit(None)
                return None
            try:
                self.spec = parse_task_spec(text)
            except ValidationError as exc:
                self._show_validation(text, exc)
            else:
                tracks, instances = len(self.spec.tracks), len(self.spec.instances)
                self._show(f"✓ Valid spec: {tracks} track{'s' * (tracks != 1)}, "
                           f"{instances} instance{'s' * (instances != 1)}, "
                           f"{self.spec.sample_rate} Hz", None, ok=True)
        self.validated.emit(self.spec)
        return self.spec

    def show_refusal(self, message: str) -> None:
        """The hub refused the spec (unknown driver, conflict): point at the field named."""
        where = path_from_message(message)
        text = self.text()
        span = locate(text, where) if where else None
        prefix = f"{describe(text, span).capitalize()}: " if span else ""
        self._show(f"{prefix}the hub refused it — {message}", span, ok=False)

    def _show_validation(self, text: str, exc: ValidationError) -> None:
        error = exc.errors()[0]
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", ""))
        if loc:
            where = _dotted(loc)
            span = locate(text, loc)
        else:
            where = path_from_message(message.removeprefix("Value error, ")) or ""
            span = locate(text, where) if where else None
            message = message.removeprefix("Value error, ").removeprefix(f"{where}: ")
        more = len(exc.errors()) - 1
        extra = f" (and {more} more)" if more > 0 else ""
        line = describe(text, span)
        head = f"{line.capitalize()}, {where}" if line and where else (where or line)
        self._show(f"{head}: {message}{extra}" if head else message + extra, span, ok=False)

    def _show(self, message: str, span: tuple[int, int] | None, ok: bool | None) -> None:
        self.error_span = span
        colour = {True: "#2e7d32", False: "#c62828", None: ""}[ok]
        self.status.setStyleSheet(f"color: {colour}" if colour else "")
        self.status.setText(message)
        selections: list[QTextEdit.ExtraSelection] = []
        if span is not None and ok is False:
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(QColor("#f8d7da"))
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(QColor("#c62828"))
            fmt.setProperty(QTextFormat.Property.FullWidthSelection, False)
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(span[0])
            cursor.setPosition(max(span[0] + 1, span[1]), QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor  # type: ignore[misc]
            selection.format = fmt  # type: ignore[misc]
            selections.append(selection)
        self.editor.setExtraSelections(selections)

    def highlighted_text(self) -> str:
        if self.error_span is None:
            return ""
        return self.text()[self.error_span[0]:self.error_span[1]]


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
