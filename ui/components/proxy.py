"""The sort proxy over the components tree: sorts each group's rows by the clicked column while
the groups keep their kind order.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt

from ui.components.model import SORT_ROLE, ComponentsModel


class ComponentsProxy(QSortFilterProxyModel):
    """Sorts each group's rows by the clicked column; the groups keep their kind order.

    The groups' sort key follows the sort order (the model flips it before each sort), so
    "Hub / cloud" stays first whichever way a column is sorted, without a Python
    ``lessThan`` being called for every comparison.
    """

    def __init__(self, model: ComponentsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.setSourceModel(model)
        self.setSortRole(SORT_ROLE)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._model.groups_descending = order == Qt.SortOrder.DescendingOrder
        super().sort(column, order)
