"""One parameter's control, built from the model registry: a slider with a spin box for numbers
(a log slider for frequencies, times and ratios), a check box for booleans, a drop-down for
choices, and the hub's refusal shown under it.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from backend.audio import ParamControl

#: Slider resolution: positions from 0 to this.
STEPS = 1000


LABEL_WIDTH = 70


ERROR_STYLE = "color: #c62828;"


class NumberEditor(QWidget):
    """A slider and a spin box kept in step; the slider moves on a log scale if asked."""

    #: The operator changed the value (not emitted by :meth:`set_value`).
    edited = QtSignal(object)

    def __init__(self, control: ParamControl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.low = control.minimum if control.minimum is not None else -1e6
        #: The exact value (the spin box shows it rounded to its decimals).
        self._value = float(control.default if control.default is not None else 0.0)
        self.high = control.maximum if control.maximum is not None else 1e6
        self.log = control.log and self.low > 0
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setSingleStep(STEPS // 100)
        self.slider.setPageStep(STEPS // 10)
        self.slider.setMinimumWidth(70)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(self.low, self.high)
        self.spin.setDecimals(control.decimals)
        self.spin.setKeyboardTracking(False)  # typed digits count on Enter or leaving
        self.spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.spin.setAccelerated(True)
        self.spin.setMinimumWidth(92)
        if control.unit:
            self.spin.setSuffix(control.unit if control.unit.startswith(":")
                                else f" {control.unit}")
        self.spin.valueChanged.connect(self._on_spin)
        tip = (f"{control.label}: {control.description}; {self._range_text()}"
               + ("; the slider moves on a log scale" if self.log else ""))
        self.slider.setToolTip(tip)
        self.spin.setToolTip(tip)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)

    def _range_text(self) -> str:
        unit = f" {self.control.unit}" if self.control.unit else ""
        return f"{self.low:g} to {self.high:g}{unit}, default {self.control.default:g}"

    def value(self) -> float | int:
        return int(self._value) if self.control.kind == "integer" else self._value

    def set_value(self, value: Any) -> None:
        self._value = float(value)
        for widget in (self.spin, self.slider):
            widget.blockSignals(True)
        self.spin.setValue(float(value))
        self.slider.setValue(self.position(float(value)))
        for widget in (self.spin, self.slider):
            widget.blockSignals(False)

    def active(self) -> bool:
        """The operator is holding the slider or typing: do not move it under them."""
        return self.slider.isSliderDown() or (self.spin.hasFocus()
                                              and self.spin.lineEdit().isModified())

    def position(self, value: float) -> int:
        value = min(max(value, self.low), self.high)
        if self.log:
            fraction = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            fraction = (value - self.low) / (self.high - self.low)
        return round(fraction * STEPS)

    def value_at(self, position: int) -> float:
        fraction = position / STEPS
        if self.log:
            value = self.low * (self.high / self.low) ** fraction
        else:
            value = self.low + fraction * (self.high - self.low)
        return round(float(min(max(value, self.low), self.high)), self.control.decimals)

    def _on_slider(self, position: int) -> None:
        self._value = self.value_at(position)
        self.spin.blockSignals(True)
        self.spin.setValue(self._value)
        self.spin.blockSignals(False)
        self.edited.emit(self.value())

    def _on_spin(self, value: float) -> None:
        self._value = round(value, self.control.decimals)
        self.slider.blockSignals(True)
        self.slider.setValue(self.position(value))
        self.slider.blockSignals(False)
        self.edited.emit(self.value())


class ParamRow(QWidget):
    """One parameter: its label, its editor, and (under them) why a change was refused."""

    #: ``(name, value)``: the operator changed it.
    edited = QtSignal(str, object)

    def __init__(self, control: ParamControl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.label = QLabel(control.label)
        self.label.setMinimumWidth(LABEL_WIDTH)
        self.label.setToolTip(control.description)
        self.number: NumberEditor | None = None
        self.combo: QComboBox | None = None
        self.check: QCheckBox | None = None
        editor: QWidget
        if control.kind == "choice":
            self.combo = QComboBox()
            for choice in control.choices:
                self.combo.addItem(choice.replace("_", " "), choice)
            self.combo.setToolTip(f"{control.label}: {control.description}")
            self.combo.currentIndexChanged.connect(
                lambda _i: self.edited.emit(self.control.name, self.value()))
            editor = self.combo
        elif control.kind == "boolean":
            self.check = QCheckBox()
            self.check.setToolTip(f"{control.label}: {control.description}")
            self.check.toggled.connect(
                lambda _on: self.edited.emit(self.control.name, self.value()))
            editor = self.check
        else:
            self.number = NumberEditor(control)
            self.number.edited.connect(lambda value: self.edited.emit(self.control.name, value))
            editor = self.number
        self.editor = editor
        self.error = QLabel()
        self.error.setObjectName("paramError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(editor, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addLayout(row)
        layout.addWidget(self.error)

    def value(self) -> Any:
        if self.combo is not None:
            return self.combo.currentData()
        if self.check is not None:
            return self.check.isChecked()
        assert self.number is not None
        return self.number.value()

    def set_value(self, value: Any) -> None:
        if self.combo is not None:
            self.combo.blockSignals(True)
            index = self.combo.findData(value)
            self.combo.setCurrentIndex(max(0, index))
            self.combo.blockSignals(False)
        elif self.check is not None:
            self.check.blockSignals(True)
            self.check.setChecked(bool(value))
            self.check.blockSignals(False)
        elif self.number is not None:
            self.number.set_value(value)

    def active(self) -> bool:
        return self.number is not None and self.number.active()

    def show_error(self, text: str) -> None:
        self.error.setText(f"✗ {text}")
        self.error.show()

    def clear_error(self) -> None:
        self.error.clear()
        self.error.hide()

    def error_text(self) -> str:
        return self.error.text()
