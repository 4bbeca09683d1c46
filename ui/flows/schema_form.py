"""A form generated from a JSON Schema object: flow inputs and lock candidates.

One row per property of the (top-level) object: text for strings, a drop-down for an
``enum``, a check box for booleans, a number field for ``number``/``integer`` (the range in
its placeholder), and a comma-separated field for arrays of simple types. Anything else is
typed as JSON. ``$ref`` into ``$defs`` and pydantic's ``anyOf [T, null]`` are followed.
:meth:`SchemaForm.value` builds the JSON object or raises :class:`FieldError` naming the
field, which the form marks; the entered values are never cleared by an error.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

SIMPLE = ("string", "number", "integer", "boolean")


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` and unwrap ``anyOf``/``oneOf`` with ``null``."""
    for _ in range(10):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            continue
        options = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(options, list):
            real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            if len(real) == 1:
                merged = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                schema = {**real[0], **merged}
                continue
        break
    return schema


def kind_of(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "enum"
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "array":
        items = schema.get("items") or {}
        if isinstance(items, dict) and (items.get("type") in SIMPLE or "enum" in items):
            return "array"
        return "json"
    return kind if kind in SIMPLE else "json"


class SchemaForm(QWidget):
    """Fields for one JSON Schema object."""

    def __init__(self, schema: dict[str, Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.fields: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._required: set[str] = set()
        self.set_schema(schema or {})

    def set_schema(self, schema: dict[str, Any]) -> None:
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self.fields.clear()
        self.labels.clear()
        self._schemas.clear()
        root = schema
        schema = resolve(schema, root)
        self._required = set(schema.get("required") or [])
        properties = schema.get("properties") or {}
        if not properties:
            note = QLabel("No fields to fill in." if schema.get("type") == "object"
                          or not schema else "Any JSON object (type it below).")
            self._layout.addRow(note)
            if schema and not properties and schema.get("additionalProperties", True):
                self._add("value", {"type": "object"}, root, label="JSON")
            return
        for name, prop in properties.items():
            self._add(name, resolve(prop, root), root)

    def _add(self, name: str, prop: dict[str, Any], root: dict[str, Any],
             label: str | None = None) -> None:
        kind = kind_of(prop)
        default = prop.get("default")
        widget: QWidget
        if kind == "enum":
            combo = QComboBox()
            if name not in self._required and default is None:
                combo.addItem("(not set)", None)
            for option in prop.get("enum", []):
                combo.addItem(str(option), option)
            if default is not None:
                combo.setCurrentIndex(max(0, combo.findData(default)))
            widget = combo
        elif kind == "boolean":
            check = QCheckBox()
            check.setChecked(bool(default))
            widget = check
        else:
            edit = QLineEdit()
            if default is not None:
                edit.setText(", ".join(map(str, default)) if kind == "array"
                             else json.dumps(default) if kind == "json" else str(default))
            edit.setPlaceholderText(_placeholder(kind, prop, name in self._required))
            widget = edit
        tip = str(prop.get("description") or prop.get("title") or name)
        widget.setToolTip(tip)
        widget.setMinimumWidth(160)
        text = label or name
        caption = QLabel(f"{text}{' *' if name in self._required else ''}:")
        caption.setToolTip(tip + (" (required)" if name in self._required else ""))
        self._layout.addRow(caption, widget)
        self.fields[name] = widget
        self.labels[name] = caption
        self._schemas[name] = prop

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            widget = self.fields.get(name)
            kind = kind_of(self._schemas.get(name, {}))
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex(max(0, widget.findData(value)))
            elif isinstance(widget, QLineEdit):
                widget.setText(", ".join(map(str, value)) if kind == "array" and
                               isinstance(value, list) else
                               json.dumps(value) if kind == "json" else str(value))

    def value(self) -> dict[str, Any]:
        """The JSON object the form describes; :class:`FieldError` names a bad field."""
        self.mark(None)
        out: dict[str, Any] = {}
        if list(self.fields) == ["value"] and "value" not in self._schemas.get("value", {}):
            widget = self.fields["value"]
            assert isinstance(widget, QLineEdit)
            text = widget.text().strip()
            if not text:
                return {}
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise self._error("value", f"not JSON ({exc})") from None
            if not isinstance(parsed, dict):
                raise self._error("value", "must be a JSON object")
            return parsed
        for name, widget in self.fields.items():
            prop = self._schemas[name]
            kind = kind_of(prop)
            required = name in self._required
            if isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
                continue
            if isinstance(widget, QComboBox):
                data = widget.currentData()
                if data is not None:
                    out[name] = data
                elif required:
                    raise self._error(name, "choose one")
                continue
            assert isinstance(widget, QLineEdit)
            text = widget.text().strip()
            if not text:
                if required:
                    raise self._error(name, "required")
                continue
            out[name] = self._parse(name, kind, prop, text)
        return out

    def _parse(self, name: str, kind: str, prop: dict[str, Any], text: str) -> Any:
        if kind == "string":
            return text
        if kind in ("number", "integer"):
            return self._number(name, kind, prop, text)
        if kind == "array":
            items = prop.get("items") or {}
            item_kind = kind_of(items)
            parts = [p.strip() for p in text.split(",") if p.strip()]
            if item_kind in ("number", "integer"):
                return [self._number(name, item_kind, items, p) for p in parts]
            if item_kind == "boolean":
                return [p.lower() in ("true", "yes", "1") for p in parts]
            return parts
        try:
            return json.loads(text)
        except ValueError as exc:
            raise self._error(name, f"not JSON ({exc})") from None

    def _number(self, name: str, kind: str, prop: dict[str, Any], text: str) -> float | int:
        try:
            number: float | int = int(text) if kind == "integer" else float(text)
        except ValueError:
            raise self._error(name, f"not {'a whole number' if kind == 'integer' else 'a number'}"
                              f": {text!r}") from None
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and number < low:
            raise self._error(name, f"must be at least {low}")
        if high is not None and number > high:
            raise self._error(name, f"must be at most {high}")
        return number

    def _error(self, name: str, message: str) -> FieldError:
        self.mark(name)
        return FieldError(name, message)

    def mark(self, name: str | None) -> None:
        """Show which field is wrong (or none)."""
        for field, label in self.labels.items():
            label.setStyleSheet("color: #c62828; font-weight: bold;" if field == name else "")
        if name is not None and name in self.fields:
            self.fields[name].setFocus(Qt.FocusReason.OtherFocusReason)


def _placeholder(kind: str, prop: dict[str, Any], required: bool) -> str:
    low, high = prop.get("minimum"), prop.get("maximum")
    if kind in ("number", "integer"):
        span = f"{low if low is not None else '…'} to {high if high is not None else '…'}" \
            if low is not None or high is not None else ""
        base = "a whole number" if kind == "integer" else "a number"
        hint = f"{base}, {span}" if span else base
    elif kind == "array":
        hint = "values separated by commas"
    elif kind == "json":
        hint = "JSON"
    else:
        hint = "text"
    return hint if required else f"{hint} (optional)"
