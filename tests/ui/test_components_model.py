"""The components view model on its own: plain dicts in, cells out, rows kept in place."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import QApplication

from ui import health_style
from ui.components_model import (
    COLUMNS,
    COMPONENT,
    COMPONENT_ROLE,
    HEALTH,
    KIND,
    LAST_SEEN,
    ROUND_TRIP,
    SORT_ROLE,
    STATE_ROLE,
    ComponentsModel,
    format_rtt,
    relative_time,
)

NOW = 1_800_000_000.0
DISPLAY = Qt.ItemDataRole.DisplayRole


def component(cid: str, kind: str = "engine", state: str = "up", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": cid, "kind": kind, "state": state, "last_seen": NOW - 0.4, "rtt_ms": 0.875,
        "connected": state != "down", "config": {"sample_rate": 48000}, "registered_at": NOW - 5,
        "report": None,
    }
    return base | extra


class Spy:
    """Counts the structural signals a view reacts to."""

    def __init__(self, model: ComponentsModel) -> None:
        self.resets = self.inserted = self.removed = 0
        self.changed: list[tuple[int, int, int, int]] = []
        model.modelReset.connect(self._reset)
        model.rowsInserted.connect(self._inserted)
        model.rowsRemoved.connect(self._removed)
        model.dataChanged.connect(self._changed)

    def _reset(self) -> None:
        self.resets += 1

    def _inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        self.inserted += last - first + 1

    def _removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        self.removed += last - first + 1

    def _changed(self, top: QModelIndex, bottom: QModelIndex, _roles: object = None) -> None:
        self.changed.append((top.row(), top.column(), bottom.row(), bottom.column()))


@pytest.fixture
def model(qapp: QApplication) -> ComponentsModel:  # qapp: icons need a QGuiApplication
    return ComponentsModel(clock=lambda: NOW, misses=3)


def cell(model: ComponentsModel, row: int, column: int, role: int = DISPLAY) -> Any:
    return model.data(model.index(row, column), role)


def test_columns_are_component_kind_health_round_trip_last_seen(model: ComponentsModel) -> None:
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(len(COLUMNS))]
    assert headers == ["Component", "Kind", "Health", "Round trip", "Last seen"]
    assert all(model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
               for c in range(len(COLUMNS)))


def test_rows_are_ordered_by_kind_then_id(model: ComponentsModel) -> None:
    model.set_components([component("engine-2"), component("drv-b", "driver"),
                          component("engine-1"), component("drv-a", "driver")])
    assert [cell(model, r, COMPONENT) for r in range(model.rowCount())] == [
        "drv-a", "drv-b", "engine-1", "engine-2"]


def test_health_is_told_by_word_and_colour(model: ComponentsModel) -> None:
    model.set_components([component("a", state="up"), component("b", state="half_open"),
                          component("c", state="down")])
    assert [cell(model, r, HEALTH) for r in range(3)] == ["up", "half-open", "down"]
    assert [cell(model, r, 0, STATE_ROLE) for r in range(3)] == ["up", "half_open", "down"]
    for row in range(3):
        icon = cell(model, row, HEALTH, Qt.ItemDataRole.DecorationRole)
        assert isinstance(icon, QIcon) and not icon.isNull()
    pixels = [cell(model, r, HEALTH, Qt.ItemDataRole.DecorationRole).pixmap(12, 12).toImage()
              .pixelColor(6, 6) for r in range(3)]
    assert [p.name() for p in pixels] == [health_style.colour(s).name()
                                          for s in ("up", "half_open", "down")]
    assert len({p.name() for p in pixels}) == 3


def test_health_tooltips_explain_each_state(model: ComponentsModel) -> None:
    model.set_components([component("a", state="half_open"), component("b", state="down")])
    half_open = cell(model, 0, HEALTH, Qt.ItemDataRole.ToolTipRole)
    down = cell(model, 1, HEALTH, Qt.ItemDataRole.ToolTipRole)
    assert half_open.startswith(
        "half-open: registered, waiting for its first answered health check")
    assert down.startswith("down: 3 missed checks in a row or connection closed")


def test_a_state_event_adds_its_reason_to_the_tooltip(model: ComponentsModel) -> None:
    model.set_components([component("a", state="down", connected=True)])
    model.note_event({"id": 7, "ts": NOW - 2, "type": "component.state", "subject": "a",
                      "data": {"kind": "engine", "old": "up", "new": "down",
                               "reason": "3 health checks in a row unanswered within 0.5 s"}})
    tip = cell(model, 0, HEALTH, Qt.ItemDataRole.ToolTipRole)
    assert "up → down (3 health checks in a row unanswered within 0.5 s)" in tip
    assert "still open: the process may be hung" in tip
    # A reason for a state the component has since left is not shown as current.
    model.set_components([component("a", state="half_open")])
    assert "unanswered" not in cell(model, 0, HEALTH, Qt.ItemDataRole.ToolTipRole)


def test_round_trip_and_last_seen_read_as_an_operator_would(model: ComponentsModel) -> None:
    model.set_components([component("a"), component("b", rtt_ms=None, last_seen=None,
                                                     state="half_open")])
    assert cell(model, 0, ROUND_TRIP) == "0.88 ms"
    assert cell(model, 0, LAST_SEEN) == "0.4 s ago"
    assert cell(model, 1, ROUND_TRIP) == "—"
    assert cell(model, 1, LAST_SEEN) == "never"
    assert cell(model, 0, ROUND_TRIP, Qt.ItemDataRole.TextAlignmentRole) == int(
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


@pytest.mark.parametrize(("age", "text"), [
    (0.0, "just now"), (0.44, "0.4 s ago"), (9.94, "9.9 s ago"), (12.4, "12 s ago"),
    (125, "2 min ago"), (7300, "2 h ago"), (3 * 86400 + 5, "3 d ago"),
])
def test_relative_time(age: float, text: str) -> None:
    assert relative_time(NOW - age, NOW) == text


@pytest.mark.parametrize(("rtt", "text"), [
    (0.4321, "0.43 ms"), (12.34, "12.3 ms"), (250.6, "251 ms"), (None, "—"),
])
def test_format_rtt(rtt: float | None, text: str) -> None:
    assert format_rtt(rtt) == text


def test_a_down_component_shows_its_last_measurements_as_stale(model: ComponentsModel) -> None:
    model.set_components([component("a", state="down"), component("b", state="up")])
    stale = cell(model, 0, ROUND_TRIP, Qt.ItemDataRole.ForegroundRole)
    assert isinstance(stale, QColor)
    assert cell(model, 1, ROUND_TRIP, Qt.ItemDataRole.ForegroundRole) is None
    assert "before it stopped answering" in cell(model, 0, ROUND_TRIP,
                                                 Qt.ItemDataRole.ToolTipRole)


def test_same_ids_update_in_place_without_reset_or_row_moves(model: ComponentsModel) -> None:
    model.set_components([component("a"), component("b", "driver")])
    spy = Spy(model)
    model.set_components([component("a", rtt_ms=3.5), component("b", "driver")])
    assert (spy.resets, spy.inserted, spy.removed) == (0, 0, 0)
    row_a = model.row_of("a")
    assert row_a == 1  # driver "b" sorts first
    assert (row_a, 0, row_a, len(COLUMNS) - 1) in spy.changed  # the changed row, whole
    assert (0, 0, 0, len(COLUMNS) - 1) not in spy.changed  # the unchanged row is left alone
    assert cell(model, row_a, ROUND_TRIP) == "3.50 ms"


def test_new_and_gone_components_insert_and_remove_only_their_rows(
    model: ComponentsModel,
) -> None:
    model.set_components([component("a"), component("c")])
    spy = Spy(model)
    model.set_components([component("a"), component("b"), component("c")])
    assert (spy.resets, spy.inserted, spy.removed) == (0, 1, 0)
    assert [cell(model, r, COMPONENT) for r in range(3)] == ["a", "b", "c"]
    model.set_components([component("b")])
    assert (spy.resets, spy.inserted, spy.removed) == (0, 1, 2)
    assert model.rowCount() == 1 and cell(model, 0, COMPONENT, COMPONENT_ROLE)["id"] == "b"


def test_a_kind_change_moves_the_row_to_its_new_place(model: ComponentsModel) -> None:
    model.set_components([component("x", "engine"), component("y", "engine")])
    model.set_components([component("x", "runner"), component("y", "engine")])
    assert [cell(model, r, COMPONENT) for r in range(2)] == ["y", "x"]
    assert cell(model, 1, KIND) == "runner"


def test_counts_and_sort_keys(model: ComponentsModel) -> None:
    model.set_components([component("a"), component("b", state="down", rtt_ms=None),
                          component("c", state="half_open")])
    assert model.counts() == {"up": 1, "half_open": 1, "down": 1}
    assert cell(model, 0, HEALTH, SORT_ROLE) > cell(model, 1, HEALTH, SORT_ROLE)  # up > down
    assert cell(model, 1, ROUND_TRIP, SORT_ROLE) == float("inf")  # unmeasured sorts last
    assert cell(model, 0, LAST_SEEN, SORT_ROLE) == NOW - 0.4
