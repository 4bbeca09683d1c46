"""The Flows tab: every node's catalog, launch with an inputs form, runs, events, locks.

Left: the catalog (flows grouped by node) with the selected flow's description and an inputs form
generated from its JSON Schema, and the runs launched from this console with their
state. Right: the selected run with Cancel (while it is not final), its nested runs
(children started on any node, each with its state and open lock; double-click one to
follow it in the runs list), its live events and, while it is locked, the lock panel —
the prompt, a form from the lock's schema, the time left before the flow stops waiting,
and Submit, which shows "released" or the flow's denial inline and keeps what was typed.
A child's open lock is one of the parent's locks, so it is answered from the parent.

Each run is followed by a coroutine reading its event stream through the bridge until its
``final`` event; every event refreshes the run's state (one GET) so the table, the
locks and the result are always the node's own view. On a read-only console (a viewer
token) Launch, its inputs, Cancel run and the lock's answer are greyed out with the
reason; the catalog, the runs and their events are reads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backend.client import ClientError, RunEvent
from ui.core.bridge import HubBridge, wait_for_followers
from ui.core.coroutines import CoroutineRunner
from ui.core.table_model import record_table
from ui.core.typography import escape
from ui.flows.lock_panel import LockPanel
from ui.flows.model import FID, FINAL, FLOW, NODE, RUN_COLOURS, STATE, Run, RunsModel, event_line
from ui.flows.schema_form import FieldError, SchemaForm


class FlowsView(QWidget):
    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.catalog: list[dict[str, Any]] = []
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()

        self.tree = QTreeWidget()
        self.tree.setObjectName("flowCatalog")
        self.tree.setHeaderLabels(["Flow", "Description"])
        self.tree.setMinimumHeight(120)
        self.tree.setToolTip("Every node's flows; select one to launch it")
        self.tree.header().resizeSection(0, 180)
        self.tree.currentItemChanged.connect(lambda *_: self._on_flow())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Ask the hub again for its nodes and their flows")
        self.refresh_button.clicked.connect(self.refresh)
        self.flow_title = QLabel("Select a flow to launch it.")
        self.flow_title.setWordWrap(True)
        self.inputs = SchemaForm()
        self.launch_button = QPushButton("Launch")
        self.launch_button.setToolTip("Start the flow with these inputs; leave required "
                                      "ones empty to launch it without inputs (some flows "
                                      "then ask for them with a lock)")
        self.launch_button.setEnabled(False)
        self.launch_button.clicked.connect(self.launch)
        self.launch_status = QLabel()
        self.launch_status.setWordWrap(True)

        catalog_head = QHBoxLayout()
        catalog_head.addWidget(QLabel("<b>Catalog</b>"), 1)
        catalog_head.addWidget(self.refresh_button)
        launch_row = QHBoxLayout()
        launch_row.addWidget(self.launch_button)
        launch_row.addWidget(self.launch_status, 1)
        catalog = QWidget()
        catalog_layout = QVBoxLayout(catalog)
        catalog_layout.setContentsMargins(0, 0, 0, 0)
        catalog_layout.addLayout(catalog_head)
        catalog_layout.addWidget(self.tree, 1)
        catalog_layout.addWidget(self.flow_title)
        catalog_layout.addWidget(self.inputs)
        catalog_layout.addLayout(launch_row)

        self.runs = RunsModel(self)
        self.table = record_table(self.runs, "runsTable", alternating=False)
        self.table.setMinimumHeight(90)
        self.table.setToolTip("Runs launched from this console; select one for its events")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column, width in ((NODE, 90), (FLOW, 110), (FID, 150), (STATE, 80)):
            header.resizeSection(column, width)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_run())
        runs = QWidget()
        runs_layout = QVBoxLayout(runs)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_layout.addWidget(QLabel("<b>Runs</b>"))
        runs_layout.addWidget(self.table, 1)

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(catalog)
        left.addWidget(runs)
        left.setChildrenCollapsible(False)

        self.run_title = QLabel("No run selected")
        self.run_title.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setToolTip("Stop the selected run (and the runs it started); its "
                                      "state becomes cancelled")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.cancel_status = QLabel()
        self.cancel_status.setObjectName("cancelStatus")
        self.cancel_status.setWordWrap(True)
        self.children_title = QLabel("<b>Nested runs</b>")
        self.children_tree = QTreeWidget()
        self.children_tree.setObjectName("childRuns")
        self.children_tree.setHeaderLabels(["Flow", "Node", "Run", "State", "Waiting for"])
        self.children_tree.setRootIsDecorated(False)
        self.children_tree.setToolTip("Runs this run started (nested flows), as its own state "
                                      "shows them; double-click one to follow it")
        self.children_tree.itemDoubleClicked.connect(lambda item, _c: self.follow_child(
            item.data(0, Qt.ItemDataRole.UserRole)))
        for column, width in ((0, 110), (1, 90), (2, 150), (3, 80)):
            self.children_tree.header().resizeSection(column, width)
        self.events = QPlainTextEdit()
        self.events.setObjectName("runEvents")
        self.events.setReadOnly(True)
        self.events.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.events.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.events.setToolTip("The selected run's events as the node stores them, live")
        self.lock_panel = LockPanel(bridge, actions)
        bridge.access.guard(self.inputs, self.launch_button, self.cancel_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        title_row = QHBoxLayout()
        title_row.addWidget(self.run_title, 1)
        title_row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        right_layout.addLayout(title_row)
        right_layout.addWidget(self.cancel_status)
        right_layout.addWidget(self.children_title)
        right_layout.addWidget(self.children_tree)
        right_layout.addWidget(self.lock_panel)
        right_layout.addWidget(QLabel("<b>Events</b>"))
        right_layout.addWidget(self.events, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([520, 640])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.setMinimumSize(720, 380)
        self._loaded = False
        self._show_children(None)

    # -- catalog ----------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.refresh()

    def refresh(self) -> asyncio.Task[Any]:
        return self.commands.run("List flows", self.bridge.nodes(), on_done=self._on_nodes)

    def _on_nodes(self, nodes: list[dict[str, Any]]) -> None:
        current = self.selected_flow()
        self.catalog = nodes
        self.tree.clear()
        for node in nodes:
            up = node.get("state") == "up"
            parent = QTreeWidgetItem([str(node["name"]),
                                      ("embedded in this console" if node.get("embedded")
                                       else f"node agent, {node.get('state')}")])
            parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.tree.addTopLevelItem(parent)
            for entry in node.get("flows") or []:
                item = QTreeWidgetItem([str(entry["name"]), str(entry.get("description", ""))])
                item.setData(0, Qt.ItemDataRole.UserRole, (str(node["name"]), entry))
                item.setToolTip(1, str(entry.get("description", "")))
                item.setDisabled(not up)
                parent.addChild(item)
                if current and current[0] == node["name"] and current[1]["name"] == entry["name"]:
                    self.tree.setCurrentItem(item)
            parent.setExpanded(True)

    def selected_flow(self) -> tuple[str, dict[str, Any]] | None:
        item = self.tree.currentItem()
        data = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return data if isinstance(data, tuple) else None

    def select_flow(self, node: str, flow: str) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            if parent is None:
                continue
            for j in range(parent.childCount()):
                item = parent.child(j)
                if item is None:
                    continue
                data = item.data(0, Qt.ItemDataRole.UserRole)
                if data and data[0] == node and data[1]["name"] == flow:
                    self.tree.setCurrentItem(item)
                    return not item.isDisabled() and self.tree.currentItem() is item
        return False

    def _on_flow(self) -> None:
        selected = self.selected_flow()
        self.launch_button.setEnabled(selected is not None)
        if selected is None:
            self.flow_title.setText("Select a flow to launch it.")
            self.inputs.set_schema({})
            return
        node, entry = selected
        self.flow_title.setText(f"<b>{entry['name']}</b> on {node}: "
                                f"{entry.get('description', '')}")
        self.inputs.set_schema(dict(entry.get("inputs_schema") or {}))
        self.launch_status.clear()

    def launch(self, without_inputs: bool = False) -> asyncio.Task[Any] | None:
        selected = self.selected_flow()
        if selected is None:
            return None
        node, entry = selected
        inputs: dict[str, Any] | None
        if without_inputs:
            inputs = None
        else:
            try:
                inputs = self.inputs.value()
            except FieldError as exc:
                if exc.message != "required":
                    self.launch_status.setText(f"✗ {exc.field}: {exc.message}")
                    return None
                inputs = None  # incomplete: launched without inputs, it may ask for them
                self.inputs.mark(None)
        self.launch_status.setText("Launching…")

        async def start() -> Run:
            fid = await self.bridge.start_run(node, str(entry["name"]), inputs)
            return Run(node, str(entry["name"]), fid)

        return self.commands.run(f"Launch {entry['name']}", start(), on_done=self._launched)

    def _launched(self, run: Run) -> None:
        self.launch_status.setText(f"Started run {run.fid}")
        self.runs.add(run)
        self.table.selectRow(len(self.runs.runs) - 1)
        self._followers[run.fid] = asyncio.get_running_loop().create_task(
            self._follow(run), name=f"run-{run.fid}")

    # -- runs -------------------------------------------------------------------------

    async def _follow(self, run: Run) -> None:
        try:
            run.view = await self.bridge.run_state(run.node, run.fid)
            self._changed(run)

            async def on_event(event: RunEvent) -> None:
                line = event_line(event.ts, event.type, dict(event.data))
                run.events.append(line)
                if self.selected_run() is run:
                    self.events.appendPlainText(line)
                run.view = await self.bridge.run_state(run.node, run.fid)
                self._changed(run)

            await self.bridge.follow_run(run.node, run.fid, on_event, stop=self._stop)
        except asyncio.CancelledError:
            raise
        except (ClientError, Exception) as exc:  # the stream is gone: say so on the run
            run.events.append(f"— stopped following: {exc}")
            self._changed(run)
        finally:
            self._followers.pop(run.fid, None)

    def _changed(self, run: Run) -> None:
        self.runs.changed(run)
        if self.selected_run() is run:
            self._show_header(run)
            self._show_children(run)
            self.lock_panel.show_lock(run)

    def cancel_selected(self) -> asyncio.Task[Any] | None:
        """Ask the run's node to cancel it; the stream then ends with ``cancelled``."""
        run = self.selected_run()
        if run is None or run.state in FINAL:
            return None
        self.cancel_button.setEnabled(False)
        self.cancel_status.setText(f"Cancelling {run.fid}…")

        async def cancel() -> None:
            try:
                await self.bridge.cancel_run(run.node, run.fid)
            except ClientError as exc:
                if self.selected_run() is run:
                    self.cancel_status.setText(f"✗ Cancel refused: {exc.message}")
                    self.cancel_button.setEnabled(run.state not in FINAL)
                raise

        return self.commands.run(f"Cancel {run.flow} run {run.fid}", cancel())

    def follow_child(self, child: object) -> Run | None:
        """Add a nested run to the runs list (once) and follow its own events."""
        if not isinstance(child, dict) or not child.get("fid") or not child.get("node"):
            return None
        fid = str(child["fid"])
        existing = self.runs.find(fid)
        if existing is None:
            existing = Run(str(child["node"]), str(child.get("flow") or "?"), fid)
            self.runs.add(existing)
            self._followers[fid] = asyncio.get_running_loop().create_task(
                self._follow(existing), name=f"run-{fid}")
        row = self.runs.row_of(fid)
        if row is not None:
            self.table.selectRow(row)
        return existing

    def _show_children(self, run: Run | None) -> None:
        children = list(run.view.get("children") or []) if run is not None else []
        self.children_title.setVisible(bool(children))
        self.children_tree.setVisible(bool(children))
        self.children_tree.clear()
        for child in children:
            locks = child.get("locks") or []
            waiting = str(locks[0].get("prompt", "")) if locks else ""
            state = str(child.get("state") or "")
            item = QTreeWidgetItem([str(child.get("flow") or ""), str(child.get("node") or ""),
                                    str(child.get("fid") or ""), state, waiting])
            item.setForeground(3, QBrush(QColor(RUN_COLOURS.get(state, "#000000"))))
            item.setData(0, Qt.ItemDataRole.UserRole, dict(child))
            item.setToolTip(0, f"{child.get('flow')} on {child.get('node')}: {state}"
                            + (f"; its lock is answered in this run's lock panel: {waiting}"
                               if waiting else ""))
            self.children_tree.addTopLevelItem(item)
        if children:  # as tall as its rows (up to five), no empty space under them
            rows = min(len(children), 5)
            height = self.children_tree.header().sizeHint().height() + 6 + rows * max(
                self.children_tree.sizeHintForRow(0), 18)
            self.children_tree.setFixedHeight(height)

    def child_states(self) -> dict[str, str]:
        """What the nested-runs list shows: child run id -> state."""
        out: dict[str, str] = {}
        for i in range(self.children_tree.topLevelItemCount()):
            item = self.children_tree.topLevelItem(i)
            if item is not None:
                out[item.text(2)] = item.text(3)
        return out

    def selected_run(self) -> Run | None:
        rows = self.table.selectionModel().selectedRows()
        return self.runs.runs[rows[0].row()] if rows else None

    def _show_run(self) -> None:
        run = self.selected_run()
        self.events.clear()
        self.cancel_status.clear()
        if run is None:
            self.run_title.setText("No run selected")
            self.cancel_button.setEnabled(False)
            self._show_children(None)
            self.lock_panel.show_lock(None)
            return
        self.events.setPlainText("\n".join(run.events))
        self._show_header(run)
        self._show_children(run)
        self.lock_panel.show_lock(run)

    def _show_header(self, run: Run) -> None:
        colour = RUN_COLOURS.get(run.state, "#000000")
        text = (f"<b>{run.flow}</b> run {run.fid} on {run.node}: "
                f"<b style='color:{colour}'>{run.state}</b>")
        if run.view.get("result") is not None:
            text += f" — result {escape(json.dumps(run.view['result'])[:200])}"
        if run.view.get("error"):
            text += f" — {escape(str(run.view['error'])[:200])}"
        self.run_title.setText(text)
        final = run.state in FINAL
        if final and self.cancel_status.text().startswith("Cancelling"):
            self.cancel_status.clear()
        self.cancel_button.setEnabled(not final and not self.cancel_status.text()
                                      .startswith("Cancelling"))

    async def close_streams(self, grace_s: float = 3.0) -> None:
        """Ask the followers to stop and wait for them (cancelled only as a last resort)."""
        self._stop.set()
        await wait_for_followers(set(self._followers.values()), grace_s)
