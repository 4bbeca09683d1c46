"""How a health state looks: its words, its colour and its dot, in one place.

The table, the details panel, the status bar and the event log all name and colour the
three states the hub reports (``half_open``, ``up``, ``down``); keeping the vocabulary here means
"half-open" is amber and spelled the same everywhere. Colour is never the only signal:
every use pairs it with the word, for colour-blind operators and for screenshots in grey.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

#: Display order everywhere (status bar, summaries): good news first.
STATES: tuple[str, ...] = ("up", "half_open", "down")

_LABELS = {"up": "up", "half_open": "half-open", "down": "down"}

#: Mid-tone colours that read on both light and dark palettes.
_COLOURS = {"up": "#2da44e", "half_open": "#d4a72c", "down": "#cf222e"}
_UNKNOWN_COLOUR = "#8c959f"


def label(state: str) -> str:
    """The word an operator reads for a state (``half_open`` -> ``half-open``)."""
    return _LABELS.get(state, state.replace("_", "-"))


def colour(state: str) -> QColor:
    return QColor(_COLOURS.get(state, _UNKNOWN_COLOUR))


def colour_name(state: str) -> str:
    """The colour as ``#rrggbb``, for rich text."""
    return _COLOURS.get(state, _UNKNOWN_COLOUR)


def dot_html(state: str) -> str:
    """A coloured bullet for rich-text labels (the word goes next to it, never instead)."""
    return f'<span style="color:{colour_name(state)}">&#9679;</span>'


@cache
def dot_icon(state: str, size: int = 12) -> QIcon:
    """A filled circle in the state's colour, drawn once per state (needs a QGuiApplication)."""
    scale = 2  # drawn at 2x so it stays round on high-density screens
    pixmap = QPixmap(size * scale, size * scale)
    pixmap.setDevicePixelRatio(scale)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    fill = colour(state)
    painter.setPen(fill.darker(130))
    painter.setBrush(fill)
    painter.drawEllipse(QRectF(1.5, 1.5, size - 3.0, size - 3.0))
    painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)  # not tinted by the selection colour
    return icon
