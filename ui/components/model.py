"""The components tree's view model: component dicts in, a tree grouped by kind out.

It is fed whole snapshots (the dicts of ``GET /api/v1/components``) by the bridge, about
once a second and on every component event. The top level holds one group per kind that
has members ("Engines (2)"), in a fixed order; each group holds its components by id; an
instance driver holds its fixed instances (from its merged config's ``instances``, with
what the driver itself last reported about them) and a hub that joined this one as a
cloud holds the components it reports. The tree is updated in place: a snapshot with the
same ids only emits ``dataChanged`` for the cells that changed, and one that adds or drops
components inserts or removes just those rows. A reset would throw away the operator's
selection, expansion and scroll position every second. Nothing here touches the hub or
the loop, so it is tested with plain dicts and a fake clock.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from ui.components.hosted import instances_of, reported_components
from ui.core import health_style
from ui.core.formatting import format_rtt, format_timestamp, relative_time

ComponentView = dict[str, Any]
Index = QModelIndex | QPersistentModelIndex

COLUMNS: tuple[str, ...] = ("Component", "Kind / model", "Health", "Round trip", "Last seen")
COMPONENT, KIND, HEALTH, ROUND_TRIP, LAST_SEEN = range(len(COLUMNS))

#: The raw state (``half_open``, ``up``, ``down``) of the row, whatever the column.
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
#: A number or string a proxy sorts the column by (numbers, not "0.4 s ago").
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
#: The component dict the row belongs to: its own, or its owner's for an instance row.
COMPONENT_ROLE = Qt.ItemDataRole.UserRole + 3
#: What the row is: ``group``, ``component``, ``instance`` or ``reported``.
ROW_KIND_ROLE = Qt.ItemDataRole.UserRole + 4
#: The row's own id: a kind for a group, a component id, an instance id.
ID_ROLE = Qt.ItemDataRole.UserRole + 5

GROUP, COMPONENT_ROW, INSTANCE, REPORTED = "group", "component", "instance", "reported"

#: Top-level groups in display order: (kind, title).
GROUPS: tuple[tuple[str, str], ...] = (
    ("hub", "Hub / cloud"),
    ("engine", "Engines"),
    ("driver", "Instance drivers"),
    ("runner", "Runners"),
    ("node", "Nodes"),
)
_GROUP_RANK = {kind: rank for rank, (kind, _) in enumerate(GROUPS)}
_GROUP_TITLE = dict(GROUPS)

_HEADER_TIPS = (
    "The component's id: the name its agent registered with (--name); a driver's "
    "instances are listed under it",
    "What the component is (engine, driver, runner, node, hub); for an instance, its model",
    "Health as the hub's checks see it: half-open, up or down",
    "Round trip of the last answered health check",
    "When the component last answered a health check or registered",
)
_SEVERITY = {"down": 0, "half_open": 1, "up": 2}
_STALE = QColor("#8c959f")
#: An instance its driver does not report (not created there, or not reported yet).
NOT_LOADED = "not_loaded"


def health_explanation(state: str, misses: int) -> str:
    """What a state means: the rule the hub's health checks apply to reach it."""
    if state == "half_open":
        return "half-open: registered, waiting for its first answered health check"
    if state == "up":
        return "up: answering the hub's health checks"
    if state == "down":
        return f"down: {misses} missed checks in a row or connection closed"
    return f"{state}: a state this console does not know"


def group_title(kind: str) -> str:
    return _GROUP_TITLE.get(kind, f"Other: {kind}")


def health_summary(counts: Mapping[str, int]) -> str:
    """``2 up · 1 down``: the states present, good news first."""
    return " · ".join(f"{n} {health_style.label(s)}" for s, n in counts.items() if n)


@dataclass(eq=False)
class Item:
    """One row of the tree; ``order`` is its place among its siblings."""

    row_kind: str
    key: str
    order: tuple[int, str]
    data: dict[str, Any]
    parent: Item | None = None
    children: list[Item] = field(default_factory=list)
    orders: list[tuple[int, str]] = field(default_factory=list)
    #: In the model (views know it): changes under it are announced; until then they
    #: are not, since a row is inserted with its children already in place.
    live: bool = False

    def go_live(self) -> None:
        self.live = True
        for child in self.children:
            child.go_live()

    def owner(self) -> Item | None:
        """The component row this row belongs to (itself for a component)."""
        if self.row_kind == COMPONENT_ROW:
            return self
        if self.row_kind in (INSTANCE, REPORTED):
            return self.parent
        return None


#: Which columns show each field of a component, for in-place ``dataChanged``.
_FIELD_COLUMNS = {"id": (COMPONENT, COMPONENT), "kind": (KIND, KIND),
                  "state": (COMPONENT, LAST_SEEN), "rtt_ms": (ROUND_TRIP, ROUND_TRIP),
                  "last_seen": (LAST_SEEN, LAST_SEEN)}


class ComponentsModel(QAbstractItemModel):
    """Registered components as a tree by kind, updated in place."""

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
        self._root = Item("root", "", (0, ""), {}, live=True)
        self._by_id: dict[str, Item] = {}
        self._last_change: dict[str, Mapping[str, Any]] = {}
        self._bold: QFont | None = None
        #: Set by :class:`ComponentsProxy` so groups keep their order when sorted descending.
        self.groups_descending = False

    # -- feeding ----------------------------------------------------------------------

    def set_components(self, components: Iterable[Mapping[str, Any]]) -> None:
        """Show this snapshot: remove, insert and update rows, never reset."""
        by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        for component in components:
            by_kind.setdefault(str(component.get("kind", "")), {})[
                str(component.get("id", ""))] = dict(component)
        # Rows that leave a group go first (a kind change moves a row between groups).
        for group in list(self._root.children):
            wanted = by_kind.get(group.key, {})
            self._remove_missing(group, wanted)
        groups = {kind: self._group_data(kind, members) for kind, members in by_kind.items()}
        self._sync(self._root, groups, self._group_order, GROUP, self._fill_group)
        self._by_id = {c.key: c for g in self._root.children for c in g.children}
        for group in self._root.children:  # "n s ago" moves on even when nothing else changed
            if group.children:
                self._emit_changed(group, 0, len(group.children) - 1, LAST_SEEN, LAST_SEEN)
        self.updated.emit()

    def note_event(self, event: Mapping[str, Any]) -> None:
        """Remember each component's last state change, to explain it in the tooltip."""
        if event.get("type") != "component.state":
            return
        subject = str(event.get("subject", ""))
        self._last_change[subject] = event
        item = self._by_id.get(subject)
        if item is not None:
            index = self._index(item, HEALTH)
            self.dataChanged.emit(index, index)

    def _sync(
        self,
        parent: Item,
        wanted: Mapping[str, dict[str, Any]],
        order: Callable[[str], tuple[int, str]],
        row_kind: str,
        fill: Callable[[Item, dict[str, Any]], None],
    ) -> None:
        """Make ``parent``'s children the ``wanted`` ones: remove, insert, update in place."""
        self._remove_missing(parent, wanted)
        parent_index = self._parent_index(parent) if parent.live else QModelIndex()
        changed: list[tuple[int, int, int]] = []
        present = {child.key: child for child in parent.children}
        for key in sorted(wanted, key=order):
            data = wanted[key]
            item = present.get(key)
            if item is None:
                item = Item(row_kind, key, order(key), data, parent)
                fill(item, data)  # children in place before the row appears
                row = bisect.bisect_left(parent.orders, item.order)
                if parent.live:
                    self.beginInsertRows(parent_index, row, row)
                parent.children.insert(row, item)
                parent.orders.insert(row, item.order)
                if parent.live:
                    item.go_live()
                    self.endInsertRows()
                continue
            span = self._changed_columns(item, data)
            old = item.data
            item.data = data
            if span is not None:
                changed.append((self._row(item), *span))
            if row_kind != COMPONENT_ROW or (old.get("config"), old.get("report")) != (
                    data.get("config"), data.get("report")):
                fill(item, data)  # a component's children come from its config and report
            if (parent.live and row_kind == COMPONENT_ROW and item.children
                    and old.get("state") != data.get("state")):
                # an instance's health follows its driver's
                self._emit_changed(item, 0, len(item.children) - 1, COMPONENT, HEALTH)
        if changed and parent.live:
            rows = [c[0] for c in changed]
            self._emit_changed(parent, min(rows), max(rows),
                               min(c[1] for c in changed), max(c[2] for c in changed))

    def _remove_missing(self, parent: Item, wanted: Mapping[str, Any]) -> None:
        for row in reversed(range(len(parent.children))):
            if parent.children[row].key not in wanted:
                if parent.live:
                    self.beginRemoveRows(self._parent_index(parent), row, row)
                del parent.children[row]
                del parent.orders[row]
                if parent.live:
                    self.endRemoveRows()

    def _fill_group(self, group: Item, data: dict[str, Any]) -> None:
        self._sync(group, data["members"], lambda key: (0, key), COMPONENT_ROW,
                   self._fill_component)

    def _fill_component(self, item: Item, component: dict[str, Any]) -> None:
        kind = component.get("kind")
        if kind == "driver":
            self._sync(item, instances_of(component), lambda key: (0, key), INSTANCE,
                       _no_children)
        elif kind == "hub":
            self._sync(item, reported_components(component), lambda key: (0, key),
                       REPORTED, _no_children)
        elif item.children:
            self._sync(item, {}, lambda key: (0, key), INSTANCE, _no_children)

    @staticmethod
    def _group_order(kind: str) -> tuple[int, str]:
        return (_GROUP_RANK.get(kind, len(GROUPS)), kind)

    @staticmethod
    def _group_data(kind: str, members: dict[str, dict[str, Any]]) -> dict[str, Any]:
        counts = dict.fromkeys(health_style.STATES, 0)
        for component in members.values():
            state = str(component.get("state"))
            counts[state] = counts.get(state, 0) + 1
        return {"kind": kind, "count": len(members), "counts": counts, "members": members}

    @staticmethod
    def _changed_columns(item: Item, new: Mapping[str, Any]) -> tuple[int, int] | None:
        """The span of columns whose cells change from ``item.data`` to ``new``."""
        old = item.data
        if item.row_kind == GROUP:
            same = old.get("count") == new.get("count") and old.get("counts") == new.get("counts")
            return None if same else (COMPONENT, LAST_SEEN)
        if old == new:
            return None
        first, last = LAST_SEEN + 1, -1
        for key in old.keys() | new.keys():
            if old.get(key) == new.get(key):
                continue
            lo, hi = _FIELD_COLUMNS.get(key, (COMPONENT, HEALTH))  # tooltips, instances
            first, last = min(first, lo), max(last, hi)
        return (first, last) if last >= 0 else None

    # -- reading ----------------------------------------------------------------------

    def components(self) -> list[ComponentView]:
        """Every component, in tree order (groups by kind, then ids)."""
        return [c.data for g in self._root.children for c in g.children]

    def component_count(self) -> int:
        return len(self._by_id)

    def component_by_id(self, component_id: str) -> ComponentView | None:
        item = self._by_id.get(component_id)
        return None if item is None else item.data

    def index_of(self, row_id: str, column: int = COMPONENT,
                 owner: str | None = None) -> QModelIndex:
        """A component's index, or an instance's (``owner`` is its driver); invalid if none."""
        if owner is None:
            item = self._by_id.get(row_id)
        else:
            parent = self._by_id.get(owner)
            item = next((c for c in parent.children if c.key == row_id), None) if parent else None
        return QModelIndex() if item is None else self._index(item, column)

    def group_index(self, kind: str) -> QModelIndex:
        for group in self._root.children:
            if group.key == kind:
                return self._index(group, COMPONENT)
        return QModelIndex()

    def item(self, index: Index) -> Item | None:
        if not index.isValid():
            return None
        pointer = index.internalPointer()
        return pointer if isinstance(pointer, Item) else None

    def owner_of(self, index: Index) -> ComponentView | None:
        """The component a row belongs to: itself, or an instance's driver; None for groups."""
        item = self.item(index)
        owner = item.owner() if item is not None else None
        return None if owner is None else owner.data

    def now(self) -> float:
        """The model's clock (a fake one under test), for "n s ago" elsewhere."""
        return self._clock()

    def counts(self) -> dict[str, int]:
        """Components per health state, every known state present (zeros included)."""
        counts = dict.fromkeys(health_style.STATES, 0)
        for item in self._by_id.values():
            state = str(item.data.get("state"))
            counts[state] = counts.get(state, 0) + 1
        return counts

    def last_change(self, component_id: str) -> Mapping[str, Any] | None:
        """The ``component.state`` event that put the component in its current state."""
        event = self._last_change.get(component_id)
        item = self._by_id.get(component_id)
        if event is None or item is None:
            return None
        if event.get("data", {}).get("new") != item.data.get("state"):
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

    # -- QAbstractItemModel -----------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        owner = self.item(parent) if parent.isValid() else self._root
        if owner is None or not 0 <= row < len(owner.children) or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        return self.createIndex(row, column, owner.children[row])

    @overload
    def parent(self) -> QObject | None: ...
    @overload
    def parent(self, child: Index) -> QModelIndex: ...
    def parent(self, child: Index | None = None) -> QObject | QModelIndex | None:
        """An index's parent row; called with nothing, the QObject parent (Qt's overload)."""
        if child is None:
            return super().parent()
        item = self.item(child)
        if item is None or item.parent is None or item.parent is self._root:
            return QModelIndex()
        return self._index(item.parent, COMPONENT)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            if parent.column() != COMPONENT:
                return 0
            item = self.item(parent)
            return 0 if item is None else len(item.children)
        return len(self._root.children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

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
        item = self.item(index)
        if item is None:
            return None
        if item.row_kind == GROUP:
            return self._group_cell(item, index.column(), role)
        if item.row_kind == INSTANCE:
            return self._instance_cell(item, index.column(), role)
        component = item.data
        column = index.column()
        state = str(component.get("state"))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(component, column)
        if role == STATE_ROLE:
            return state
        if role == COMPONENT_ROLE:
            owner = item.owner()
            return None if owner is None else owner.data
        if role == ROW_KIND_ROLE:
            return item.row_kind
        if role == ID_ROLE:
            return item.key
        if role == SORT_ROLE:
            return self._sort_key(component, column)
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            return health_style.dot_icon(state)
        if role == Qt.ItemDataRole.ToolTipRole:
            if item.row_kind == REPORTED:
                return self._reported_tooltip(item)
            return self._tooltip(component, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == ROUND_TRIP:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and state != "up":
            if column in (ROUND_TRIP, LAST_SEEN) or (column == COMPONENT and state == "down"):
                return _STALE  # a measurement from before it stopped answering
        return None

    # -- cells ------------------------------------------------------------------------

    def _group_cell(self, group: Item, column: int, role: int) -> Any:
        data = group.data
        counts: dict[str, int] = data["counts"]
        worst = min((s for s, n in counts.items() if n), key=lambda s: _SEVERITY.get(s, -1),
                    default="up")
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COMPONENT:
                return f"{group_title(group.key)} ({data['count']})"
            if column == HEALTH:
                return health_summary(counts)
            return ""
        if role == SORT_ROLE:
            rank = group.order[0]
            return -rank if self.groups_descending else rank
        if role == STATE_ROLE:
            return worst
        if role == ROW_KIND_ROLE:
            return GROUP
        if role == ID_ROLE:
            return group.key
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            return health_style.dot_icon(worst)
        if role == Qt.ItemDataRole.FontRole and column == COMPONENT:
            if self._bold is None:
                self._bold = QFont()
                self._bold.setBold(True)
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            noun = group_title(group.key).lower()
            return (f"{data['count']} {noun}: {health_summary(counts)}; the dot shows the "
                    "worst state among them")
        return None

    def _instance_cell(self, item: Item, column: int, role: int) -> Any:
        instance = item.data
        driver = item.parent.data if item.parent is not None else {}
        driver_state = str(driver.get("state"))
        loaded = instance.get("loaded")
        state = NOT_LOADED if loaded is False else driver_state
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COMPONENT:
                return item.key
            if column == KIND:
                return str(instance.get("model", ""))
            if column == HEALTH:
                return "not loaded" if state == NOT_LOADED else health_style.label(state)
            return ""
        if role == STATE_ROLE:
            return state
        if role == COMPONENT_ROLE:
            return driver
        if role == ROW_KIND_ROLE:
            return INSTANCE
        if role == ID_ROLE:
            return item.key
        if role == SORT_ROLE:
            if column == KIND:
                return str(instance.get("model", ""))
            if column == HEALTH:
                return _SEVERITY.get(state, -1)
            return item.key
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            return health_style.dot_icon(state)
        if role == Qt.ItemDataRole.ForegroundRole and column == COMPONENT and state != "up":
            return _STALE
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._instance_tooltip(item, driver_state)
        return None

    def _instance_tooltip(self, item: Item, driver_state: str) -> str:
        instance = item.data
        driver = item.parent.key if item.parent is not None else "?"
        lines = [f"{instance.get('model')} instance {item.key}, fixed on driver {driver}"]
        if instance.get("loaded") is False:
            lines.append("Declared in the driver's config but not in its report: the model "
                         "could not be created there (see the driver's log).")
        elif instance.get("loaded") is None:
            lines.append("The driver has not reported its instances yet.")
        else:
            lines.append(f"Its driver is {health_style.label(driver_state)}.")
        params = instance.get("params")
        if params:
            lines.append(f"Params: {json.dumps(params, ensure_ascii=False)}")
        report = instance.get("report")
        if report:
            lines.append(f"Report: {json.dumps(report, ensure_ascii=False)}")
        return "\n".join(lines)

    def _reported_tooltip(self, item: Item) -> str:
        hub = item.parent.key if item.parent is not None else "?"
        report = item.parent.data.get("report") if item.parent is not None else None
        at = report.get("at") if isinstance(report, dict) else None
        return (f"{item.data.get('kind', '')} {item.key}, as hub {hub} reported it "
                f"({relative_time(at, self._clock())}); it is that hub's component, "
                "not this one's")

    def _display(self, component: Mapping[str, Any], column: int) -> str:
        if column == COMPONENT:
            return str(component.get("id", ""))
        if column == KIND:
            return str(component.get("kind", ""))
        if column == HEALTH:
            return health_style.label(str(component.get("state")))
        if column == ROUND_TRIP:
            return format_rtt(component.get("rtt_ms"))
        if "last_seen" not in component:
            return ""  # a hub's report carries no last-seen times
        return relative_time(component.get("last_seen"), self._clock())

    @staticmethod
    def _sort_key(component: Mapping[str, Any], column: int) -> str | float | int:
        if column in (COMPONENT, KIND):
            return str(component.get("id" if column == COMPONENT else "kind", ""))
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
                "select it to see its merged config and edit its stored one")

    # -- tree plumbing ----------------------------------------------------------------

    def _row(self, item: Item) -> int:
        assert item.parent is not None
        return bisect.bisect_left(item.parent.orders, item.order)

    def _index(self, item: Item, column: int) -> QModelIndex:
        return self.createIndex(self._row(item), column, item)

    def _parent_index(self, item: Item) -> QModelIndex:
        return QModelIndex() if item is self._root else self._index(item, COMPONENT)

    def _emit_changed(self, parent: Item, first: int, last: int, left: int, right: int) -> None:
        self.dataChanged.emit(self.createIndex(first, left, parent.children[first]),
                              self.createIndex(last, right, parent.children[last]))


def _no_children(_item: Item, _data: dict[str, Any]) -> None:
    pass


