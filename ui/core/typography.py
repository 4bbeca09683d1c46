"""How the console's text looks: titles, secondary text, code, and text put into rich labels.

One place for these, so every view's headings scale with the platform font (high-DPI and
the user's size included) and muted text stays readable in dark themes too.
"""

from __future__ import annotations

import html

from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import QLabel, QWidget


def title_font(widget: QWidget, scale: float = 1.25, bold: bool = True) -> QFont:
    """The widget's own font, scaled: a heading that follows the platform's size."""
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(bold)
    return font


def mute(label: QLabel) -> None:
    """Secondary text: the palette's text colour blended toward the background.

    Blended rather than a fixed grey, so it stays readable in dark themes too; not
    ``setEnabled(False)``, whose colour is too faint to read comfortably.
    """
    palette = label.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    back = palette.color(QPalette.ColorRole.Window)
    palette.setColor(QPalette.ColorRole.WindowText, QColor(
        (text.red() * 3 + back.red() * 2) // 5,
        (text.green() * 3 + back.green() * 2) // 5,
        (text.blue() * 3 + back.blue() * 2) // 5,
    ))
    label.setPalette(palette)


def fixed_font() -> QFont:
    """The system's monospace font, for commands, JSON and logs."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def escape(text: str) -> str:
    """Plain text made safe to put into a rich-text label (``&``, ``<``, ``>``)."""
    return html.escape(text, quote=False)
