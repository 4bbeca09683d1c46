"""The components table's view model: component dicts in, cells out.

It is fed whole snapshots (the dicts of ``GET /api/v1/components``) by the bridge, about
once a second and on every component event, and turns each into five columns. Rows keep
a stable order (kind, then id) and are updated in place: a snapshot with the same ids
only emits ``dataChanged``, and one that adds or drops components inserts or removes just
those rows. A reset would throw away the operator's selection and scroll position every
second. Nothing here touches the hub or the loop, so it is tested with plain dicts and a
fake clock.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor

from ui import health_style

ComponentView = dict[str, Any]
Index = QModelIndex | QPersistentModelIndex

COLUMNS: tuple[str, ...] = ("Component", "Kind", "Health", "Round trip", "Last seen")
COMPONENT, KIND, HEALTH, ROUND_TRIP, LAST_SEEN = range(len(COLUMNS))

#: The raw state (``half_open``, ``up``, ``down``) of the row, whatever the column.
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
#: A number or string a proxy sorts the column by (numbers, not "0.4 s ago").
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
#: The row's whole component dict.
COMPONENT_ROLE = Qt.ItemDataRole.UserRole + 3

_HEADER_TIPS = (
    "The component's id: the name its agent registered with (--name)",
    "What the component is: audio engine, instance driver, runner, node or hub",
    "Health as the hub's checks see it: half-open, up or down",
    "Round trip of the last answered health check",
    "When the component last answered a health check or registered",
)
_SEVERITY = {"down": 0, "half_open": 1, "up": 2}
_STALE = QColor("#8c959f")


def relative_time(then: float | None, now: float) -> str:
    """``0.4 s ago``, ``12 s ago``, ``5 min ago``: how long ago, at a glance."""
    if then is None:
        return "never"
    age = now - then
    if age < 0.05:
        return "just now"
    if age < 10:
        return f"{age:.1f} s ago"
    if age < 60:
        return f"{age:.0f} s ago"
    if age < 3600:
        return f"{age // 60:.0f} min ago"
    if age < 86400:
        return f"{age // 3600:.0f} h ago"
    return f"{age // 86400:.0f} d ago"


def format_rtt(rtt_ms: float | None) -> str:
    """Milliseconds with the precision that matters at that size."""
    if rtt_ms is None:
        return "—"
    if rtt_ms < 10:
        return f"{rtt_ms:.2f} ms"
    if rtt_ms < 100:
        return f"{rtt_ms:.1f} ms"
    return f"{rtt_ms:.0f} ms"


def format_timestamp(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def health_explanation(state: str, misses: int) -> str:
    """What a state means, in the words of the health rules (DESIGN.md)."""
    if state == "half_open":
        return "half-open: registered, waiting for its first answered health check"
    if state == "up":
        return "up: answering the hub's health checks"
    if state == "down":
        return f"down: {misses} missed checks in a row or connection closed"
    return f"{state}: a state this console does not know"


def _key(component: Mapping[str, Any]) -> tuple[str, str]:
    return (str(component.get("kind", "")), str(component.get("id", "")))


class ComponentsModel(QAbstractTableModel):
    """Registered components as table rows, in (kind, id) order, updated in place."""

    #: Emitted after every :meth:`set_components`, so summaries can follow the rows.
    updated = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Callable[[], float] = time.time,
        misses: int = 3,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._misses = misses
        self._rows: list[ComponentView] = []
        self._keys: list[tuple[str, str]] = []
        self._last_change: dict[str, Mapping[str, Any]] = {}

    # -- feeding ----------------------------------------------------------------------

    def set_components(self, components: Iterable[Mapping[str, Any]]) -> None:
        """Show this snapshot: remove, insert and update rows, never reset."""
        incoming = {_key(c): dict(c) for c in components}
        for row in reversed(range(len(self._keys))):
            if self._keys[row] not in incoming:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._keys[row]
                del self._rows[row]
                self.endRemoveRows()
        changed: list[int] = []
        for key in sorted(incoming):
            row = bisect.bisect_left(self._keys, key)
            if row < len(self._keys) and self._keys[row] == key:
                if self._rows[row] != incoming[key]:
                    self._rows[row] = incoming[key]
                    changed.append(row)
                continue
            self.beginInsertRows(QModelIndex(), row, row)
            self._keys.insert(row, key)
            self._rows.insert(row, incoming[key])
            self.endInsertRows()
        last = self.columnCount() - 1
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        if self._rows:  # "n s ago" moves on even when nothing else changed
            self.dataChanged.emit(
                self.index(0, LAST_SEEN), self.index(len(self._rows) - 1, LAST_SEEN)
            )
        self.updated.emit()

    def note_event(self, event: Mapping[str, Any]) -> None:
        """Remember each component's last state change, to explain it in the tooltip."""
        if event.get("type") != "component.state":
            return
        subject = str(event.get("subject", ""))
        self._last_change[subject] = event
        row = self.row_of(subject)
        if row is not None:
            self.dataChanged.emit(self.index(row, HEALTH), self.index(row, HEALTH))

    # -- reading ----------------------------------------------------------------------

    def component(self, row: int) -> ComponentView | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def components(self) -> list[ComponentView]:
        return list(self._rows)

    def row_of(self, component_id: str) -> int | None:
        for row, (_, cid) in enumerate(self._keys):
            if cid == component_id:
                return row
        return None

    def now(self) -> float:
        """The model's clock (a fake one under test), for "n s ago" elsewhere."""
        return self._clock()

    def counts(self) -> dict[str, int]:
        """Components per health state, every known state present (zeros included)."""
        counts = dict.fromkeys(health_style.STATES, 0)
        for component in self._rows:
            state = str(component.get("state"))
            counts[state] = counts.get(state, 0) + 1
        return counts

    def last_change(self, component_id: str) -> Mapping[str, Any] | None:
        """The ``component.state`` event that put the component in its current state."""
        event = self._last_change.get(component_id)
        row = self.row_of(component_id)
        if event is None or row is None:
            return None
        if event.get("data", {}).get("new") != self._rows[row].get("state"):
            return None  # an older change; the state moved on without an event (hub restart)
        return event

    def health_tooltip(self, component: Mapping[str, Any]) -> str:
        state = str(component.get("state"))
        lines = [health_explanation(state, self._misses)]
        if state == "down" and component.get("connected"):
            lines.append("The connection is still open: the process may be hung.")
        elif state != "down" and not component.get("connected"):
            lines.append("Not connected: brought back from the store after a hub restart.")
        change = self.last_change(str(component.get("id")))
        if change is not None:
            data = change.get("data", {})
            lines.append(
                f"Since {format_timestamp(change.get('ts'))}: "
                f"{health_style.label(str(data.get('old')))} → "
                f"{health_style.label(str(data.get('new')))} ({data.get('reason', '')})"
            )
        return "\n".join(lines)

    # -- QAbstractTableModel ----------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _HEADER_TIPS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section == ROUND_TRIP:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        component = self._rows[index.row()]
        column = index.column()
        state = str(component.get("state"))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(component, column)
        if role == STATE_ROLE:
            return state
        if role == COMPONENT_ROLE:
            return component
        if role == SORT_ROLE:
            return self._sort_key(component, column)
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            return health_style.dot_icon(state)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(component, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == ROUND_TRIP:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and state != "up":
            if column in (ROUND_TRIP, LAST_SEEN) or (column == COMPONENT and state == "down"):
                return _STALE  # a measurement from before it stopped answering
        return None

    def _display(self, component: Mapping[str, Any], column: int) -> str:
        if column == COMPONENT:
            return str(component.get("id", ""))
        if column == KIND:
            return str(component.get("kind", ""))
        if column == HEALTH:
            return health_style.label(str(component.get("state")))
        if column == ROUND_TRIP:
            return format_rtt(component.get("rtt_ms"))
        return relative_time(component.get("last_seen"), self._clock())

    def _sort_key(self, component: Mapping[str, Any], column: int) -> str | float | int:
        if column == COMPONENT:
            return str(component.get("id", ""))
        if column == KIND:
            return "\x00".join(_key(component))
        if column == HEALTH:
            return _SEVERITY.get(str(component.get("state")), -1)
        if column == ROUND_TRIP:
            rtt = component.get("rtt_ms")
            return float("inf") if rtt is None else float(rtt)
        seen = component.get("last_seen")
        return float("-inf") if seen is None else float(seen)

    def _tooltip(self, component: Mapping[str, Any], column: int) -> str:
        if column == HEALTH:
            return self.health_tooltip(component)
        if column == ROUND_TRIP:
            if component.get("rtt_ms") is None:
                return "No health check answered yet"
            if component.get("state") == "up":
                return "Round trip of the last answered health check"
            return "Round trip of the last check it answered, before it stopped answering"
        if column == LAST_SEEN:
            return f"Last answered or registered: {format_timestamp(component.get('last_seen'))}"
        connected = "connected" if component.get("connected") else "not connected"
        return (f"{component.get('kind', '')} {component.get('id', '')} ({connected}); "
                "select it to see its merged config")
