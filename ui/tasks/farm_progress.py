"""A farm render's parts under the task panel's render bar: one compact row per part.

Each row says who renders the part, which chunks of the mix, how far it is (a thin bar)
and its state, with the reason when it was lost or failed; under the rows, the runners
that were skipped and why, and the hub's final sum once it has begun. Hidden for an
engine render. The words come from ``farm_parts.py``; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ui.tasks.farm_parts import PartLine, assembly_line, farm_summary, part_lines, skipped_line

NOTE_COLOUR = "#9a6700"  # amber dark enough to read as text


class ElidedLabel(QLabel):
    """One line that ends in … when the column is narrower than its text (the tooltip
    has it all), so a long reason never widens the panel."""

    def minimumSizeHint(self) -> QSize:
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(min(super().sizeHint().width(), 240), super().sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), text)
        painter.end()


class PartRow:
    """The widgets of one part's row."""

    def __init__(self) -> None:
        self.who = QLabel()
        self.chunks = QLabel()
        self.chunks.setStyleSheet("color: palette(placeholder-text)")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.setMinimumWidth(60)
        self.status = ElidedLabel()
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.line: PartLine | None = None

    def widgets(self) -> tuple[QWidget, ...]:
        return (self.who, self.chunks, self.bar, self.status)

    def show(self, line: PartLine) -> None:
        self.line = line
        self.who.setText(f"Part {line.part}: {line.who}")
        self.chunks.setText(line.chunks)
        self.bar.setValue(round(line.progress * 1000))
        self.status.setText(line.status)
        palette = self.status.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(line.colour))
        self.status.setPalette(palette)
        for widget in self.widgets():
            widget.setToolTip(line.tooltip)


class FarmProgress(QWidget):
    """The parts of the shown render when it is a farm render; hidden otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[PartRow] = []
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(0)
        self.grid.setColumnStretch(2, 2)
        self.grid.setColumnStretch(3, 3)
        self.skipped = ElidedLabel()
        self.skipped.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        palette = self.skipped.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(NOTE_COLOUR))
        self.skipped.setPalette(palette)
        self.assembly = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(self.grid)
        layout.addWidget(self.skipped)
        layout.addWidget(self.assembly)
        self.hide()

    def show_farm(self, farm: Mapping[str, Any] | None, engine: str | None = None) -> None:
        """Show ``farm`` (a render view's ``farm``), or hide for None (an engine render)."""
        if farm is None:
            self.hide()
            return
        lines = part_lines(farm, engine)
        while len(self.rows) > len(lines):
            for widget in self.rows.pop().widgets():
                self.grid.removeWidget(widget)
                widget.deleteLater()
        while len(self.rows) < len(lines):
            row = PartRow()
            for column, widget in enumerate(row.widgets()):
                self.grid.addWidget(widget, len(self.rows), column)
            self.rows.append(row)
        for row, line in zip(self.rows, lines, strict=True):
            row.show(line)
        skipped = skipped_line(farm)
        self.skipped.setText(skipped or "")
        self.skipped.setToolTip("Runners the hub did not give a part, and why:\n"
                                + "\n".join(f"{name}: {why}" for name, why
                                            in (farm.get("skipped") or {}).items()))
        self.skipped.setVisible(skipped is not None)
        assembly = assembly_line(farm)
        self.assembly.setText(assembly or "")
        self.assembly.setToolTip("The hub sums the parts' chunks, in order, into the file")
        self.assembly.setVisible(assembly is not None)
        self.setToolTip(f"A farm render: {farm_summary(farm, engine)}")
        self.show()
