"""What the flat table models share: fixed column headers, no children, and rows that are
the hub's records.

A model names its ``headers`` and says how many rows it has (:meth:`row_count`); the base
answers Qt's ``rowCount``, ``columnCount`` and ``headerData`` from them, so each model
only writes ``data``. :class:`RecordsTableModel` adds the rows themselves for records
keyed by ``id`` (tasks, jobs, runners): finding them, and refreshing without a reset.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QTableView

Index = QModelIndex | QPersistentModelIndex


class HeaderedTableModel(QAbstractTableModel):
    headers: tuple[str, ...] = ()

    def row_count(self) -> int:
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.row_count()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return None


class RecordsTableModel(HeaderedTableModel):
    """A table of the hub's records (tasks, jobs, runners): dicts keyed by ``"id"``.

    :meth:`set_records` takes the newest list; when the ids and their order are the same
    it only repaints (a selection and a scroll position survive a refresh), otherwise it
    resets the model. Subclasses write ``data`` and may override :meth:`refreshed`.
    """

    #: The rows changed (set anew or refreshed).
    updated = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._records: list[dict[str, Any]] = []

    def set_records(self, records: list[dict[str, Any]]) -> None:
        if [r["id"] for r in records] != [r["id"] for r in self._records]:
            self.beginResetModel()
            self._records = list(records)
            self.endResetModel()
        else:
            self._records = list(records)
            self.refreshed()
        self.updated.emit()

    def refreshed(self) -> None:
        """The same rows with new values: repaint them all."""
        if self._records:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._records) - 1, len(self.headers) - 1))

    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def record(self, row: int) -> dict[str, Any]:
        return self._records[row]

    def find(self, key: str | None) -> dict[str, Any] | None:
        return next((r for r in self._records if r["id"] == key), None)

    def row_of(self, key: str) -> int | None:
        return next((i for i, r in enumerate(self._records) if r["id"] == key), None)

    def row_count(self) -> int:
        return len(self._records)

    def counts(self) -> dict[str, int]:
        """How many records are in each ``state``."""
        counts: dict[str, int] = {}
        for record in self._records:
            counts[str(record["state"])] = counts.get(str(record["state"]), 0) + 1
        return counts


def select_record(table: QTableView, model: RecordsTableModel, key: str) -> bool:
    """Select the row of the record ``key`` in ``table``; False if there is none."""
    row = model.row_of(key)
    if row is None:
        return False
    table.selectRow(row)
    return True


def selected_record_id(table: QTableView, model: RecordsTableModel) -> str | None:
    """The ``id`` of the record selected in ``table``, if any."""
    rows = table.selectionModel().selectedRows()
    return str(model.record(rows[0].row())["id"]) if rows else None


def record_table(model: HeaderedTableModel, name: str, *, alternating: bool = True,
                 ) -> QTableView:
    """The read-only table every view lists its records in: whole rows selected, one at a
    time, no grid, no row numbers. ``name`` is its object name (tests and style find it)."""
    table = QTableView()
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.setShowGrid(False)
    table.setAlternatingRowColors(alternating)
    return table
