"""``python -m app.screenshot OUTDIR``: true pictures of the console's main views, for the docs.

Nothing is staged: it starts a real hub on a free port in a temporary data dir and drives
the real window as an operator would. *Start a local studio* spawns an engine, two
instance drivers and a runner (real child processes, enrolled automatically); once the
hub has them up it saves

- ``first-run.png``: a new hub with no components: *Start a local studio* and *Add a
  remote agent…*;
- ``local-studio.png``: the same window once the local studio is up, the event log saying
  what comes next;
- ``main-window.png``: the Components tab as a tree by kind, driver-1 selected with its
  instances, its merged config and its stored overrides in the editor;
- ``agents.png``: the Agents tab, with PIDs, health, what each hosts and the selected
  agent's output;
- ``render-dialog.png``: the Render dialog of the demo task with the render farm chosen
  (by name: the local studio's runner, its state and free CPUs); the demo then renders
  on its engine;
- ``tasks.png``: the demo spec reserved through the editor, rendered once, and playing,
  with the live instance controls, the meters and level history moving;
- ``runners.png``: the local studio's runner, up with its hardware, and a job submitted
  to it, its progress and live output;
- ``tasks-farm.png``: a 64-track spec (two chunks of the mix) rendered on the farm, the
  runner and the engine each rendering a part, one row per part under the render bar
  (left out, with a note, when the hub does not split the render);
- ``flows.png``: the ``approve-render`` flow launched from its generated inputs form,
  locked on its approval, after a candidate the flow denied (the reason shown inline);
- ``read-only-console.png``: a second console attached to the same hub with a viewer
  token (``POST /api/v1/tokens``), on the Tasks tab while the demo plays: the meters move,
  every control that would change something is greyed out, and the pointer rests on
  Play, whose tooltip says why.

Run it under Xvfb for the platform's real look
(``xvfb-run -a -s "-screen 0 1400x900x24" python -m app.screenshot docs/screenshots``) or
with ``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QPoint, QSettings
from PySide6.QtWidgets import QApplication, QToolTip, QWidget

from app.console import open_console, open_remote_console, wait_for
from app.desktop import QtEventLoop
from backend.client import ClientError
from ui.core.bridge import HubBridge
from ui.shell.main_window import MainWindow
from ui.tasks.panel import TaskPanel
from ui.tasks.render_dialog import RenderDialog
from ui.tasks.spec_editor import DEMO_SPEC
from ui.tasks.view import TasksView

SIZE = (1280, 820)
NAMES = ("engine-1", "driver-1", "driver-2", "runner-1")


def save(window: QWidget, path: Path) -> Path:
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(path)
    return path


def states(window: MainWindow) -> dict[str, str]:
    return {str(c["id"]): str(c["state"]) for c in window.model.components()}


async def capture(out_dir: Path, settle_s: float) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="controlroom-shot-") as tmp:
        async with open_console(Path(tmp), log_level="info") as console:
            host, bridge, window = console.host, console.bridge, console.window
            window.resize(*SIZE)
            shots: list[Path] = []
            agents = window.agents_view
            assert agents is not None
            await wait_for(lambda: window.empty_state.isVisible(), "the empty state shown")
            await asyncio.sleep(0.3)
            shots.append(save(window, out_dir / "first-run.png"))
            window.empty_state.studio_button.click()
            await wait_for(lambda: all(states(window).get(n) == "up" for n in NAMES),
                           "the local studio up", within=60)
            await asyncio.sleep(1.0)
            shots.append(save(window, out_dir / "local-studio.png"))
            await bridge.put_config("driver-1", {"label": "rack A, studio 2"})
            window.select_component("driver-1", "driver-1.comp")  # its rack expanded
            await asyncio.sleep(settle_s)  # a few health checks: round trips and "n s ago"
            window.show_tab(window.splitter)
            shots.append(save(window, out_dir / "main-window.png"))
            window.show_tab(agents)
            agents.select("driver-1")
            await asyncio.sleep(0.3)
            shots.append(save(window, out_dir / "agents.png"))

            tasks = window.tasks_view
            window.show_tab(tasks)
            tasks.load_demo()
            tasks.reserve_button.click()
            await wait_for(lambda: (tasks.selected_task() or {}).get("state") == "ready",
                           "the demo task ready")
            panel = tasks.panel
            await render_dialog_shot(panel, out_dir, shots)  # and render on the engine
            await wait_for(lambda: (tasks.selected_task() or {}).get("state") == "rendering",
                           "rendering")
            await wait_for(lambda: (tasks.selected_task() or {}).get("state") == "ready",
                           "the render done", within=120)
            await asyncio.sleep(0.5)
            before = panel.meters.readings
            panel.play_button.click()
            await wait_for(lambda: (tasks.selected_task() or {}).get("state") == "playing"
                           and panel.meters.readings > before + 50, "the meters moving")
            shots.append(save(window, out_dir / "tasks.png"))
            await read_only_shot(window, bridge, Path(tmp), out_dir, shots)
            await runners_shot(window, bridge, out_dir, shots)
            task = tasks.selected_task() or {}
            if task.get("state") == "playing":
                await bridge.stop_task(str(task["id"]))
            await bridge.release_task(str(task["id"]))
            await farm_shot(window, out_dir, shots)

            flows = window.flows_view
            window.show_tab(flows)
            node = host.node
            assert node is not None
            await wait_for(lambda: flows.select_flow(node.name, "approve-render"),
                           "the flow catalog")
            flows.inputs.set_values({"spec": json.loads(DEMO_SPEC.read_text())})
            flows.launch()
            await wait_for(lambda: bool(flows.runs.runs)
                           and flows.runs.runs[0].state == "locked", "the run locked",
                           within=120)
            await wait_for(flows.lock_panel.isVisible, "the lock panel")
            sent = flows.lock_panel.submit()  # approve unticked, gain 0: the flow denies it
            assert sent is not None
            await wait_for(sent.done, "the verdict")
            await asyncio.sleep(0.5)
            shots.append(save(window, out_dir / "flows.png"))
            return shots


async def open_render_dialog(panel: TaskPanel) -> RenderDialog:
    """Click Render… and wait for its dialog (it opens once the runners are listed)."""
    panel.render_button.click()
    await wait_for(lambda: panel.render_dialog is not None
                   and panel.render_dialog.isVisible(), "the render dialog open")
    assert panel.render_dialog is not None
    return panel.render_dialog


async def render_dialog_shot(panel: TaskPanel, out_dir: Path, shots: list[Path]) -> None:
    """The Render dialog with the farm chosen by name; then the demo renders on its engine
    (its three tracks are one chunk of the mix: a farm would have nothing to share)."""
    dialog = await open_render_dialog(panel)
    dialog.farm_choice.click()
    dialog.names_choice.click()
    await asyncio.sleep(0.3)
    shots.append(save(dialog, out_dir / "render-dialog.png"))
    dialog.engine_choice.click()
    dialog.render_button.click()


def farm_spec(tracks: int = 64, duration_s: float = 240) -> dict[str, Any]:
    """Tones on dynamic instances only (a runner has no drivers): 64 tracks are two chunks
    of the mix (``backend/audio/graph.py`` ``mix_layout``), so a runner takes one."""
    demo = json.loads(DEMO_SPEC.read_text())
    return {
        "sample_rate": demo["sample_rate"], "block_size": demo["block_size"],
        "duration_s": duration_s,
        "tracks": [{"id": f"tone-{i + 1}",
                    "source": {"type": "tone", "freq_hz": 55 * (1 + i % 24),
                               "level_dbfs": -40, "duration_s": duration_s},
                    "gain_db": 0, "pan": round((i % 9 - 4) / 4, 2), "chain": []}
                   for i in range(tracks)],
        "instances": {}, "mix": {"master_gain_db": -1}, "window": demo["window"],
    }


async def farm_shot(window: MainWindow, out_dir: Path, shots: list[Path]) -> None:
    """A task rendered on the farm: runner-1 and the engine each render a part."""
    tasks = window.tasks_view
    window.show_tab(tasks)
    tasks.editor.set_text(json.dumps(farm_spec(), indent=1))
    before = {str(t["id"]) for t in tasks.model.tasks()}
    tasks.reserve_button.click()
    await wait_for(lambda: str((tasks.selected_task() or {}).get("id")) not in before
                   and (tasks.selected_task() or {}).get("state") == "ready",
                   "the farm task ready", within=60)
    panel = tasks.panel
    dialog = await open_render_dialog(panel)
    dialog.farm_choice.click()
    dialog.count_choice.click()
    dialog.count.setValue(1)
    dialog.render_button.click()
    dialog.farm_choice.setChecked(False)  # the next Render starts on the engine again
    dialog.engine_choice.setChecked(True)
    task_id = str((tasks.selected_task() or {})["id"])
    try:
        await wait_for(lambda: _farm_worth_showing(tasks), "a farm render's parts moving",
                       within=120)
        if tasks.panel.farm.isVisible():
            await asyncio.sleep(0.3)
            shots.append(save(window, out_dir / "tasks-farm.png"))
        else:  # the hub rendered it on the engine alone
            render = ((tasks.selected_task() or {}).get("renders") or [{}])[-1]
            print(f"tasks-farm.png left out: the render shows no parts ({render.get('state')}"
                  f", {render.get('error')})", file=sys.stderr)
    finally:
        await _render_ended(tasks, task_id)
        try:
            await tasks.panel.bridge.release_task(task_id)
        except ClientError as exc:
            print(f"could not release {task_id}: {exc.message}", file=sys.stderr)


def _farm_worth_showing(tasks: TasksView) -> bool:
    """Every part started and one well under way, or the render over."""
    renders = (tasks.selected_task() or {}).get("renders") or []
    if not renders:
        return False
    if renders[-1].get("state") != "running":
        return True
    parts = (renders[-1].get("farm") or {}).get("parts") or []
    return (tasks.panel.farm.isVisible() and bool(parts)
            and all(p.get("state") != "waiting" for p in parts)
            and any(float(p.get("progress") or 0) >= 0.3 for p in parts))


async def _render_ended(tasks: TasksView, task_id: str) -> None:
    task = next((t for t in tasks.model.tasks() if t["id"] == task_id), {})
    running = [r for r in task.get("renders") or [] if r.get("state") == "running"]
    for render in running:
        await tasks.panel.bridge.cancel_render(task_id, str(render["render_id"]))
    await wait_for(lambda: next((t for t in tasks.model.tasks() if t["id"] == task_id),
                                {}).get("state") != "rendering", "the render ended",
                   within=30)


async def read_only_shot(window: MainWindow, bridge: HubBridge, tmp: Path, out_dir: Path,
                         shots: list[Path]) -> None:
    """A viewer's console on the same hub while the demo plays, Play's tooltip showing."""
    token = str((await bridge.client.create_token("wall", "viewer"))["token"])
    task_id = str((window.tasks_view.selected_task() or {})["id"])
    settings = QSettings(str(tmp / "wall.ini"), QSettings.Format.IniFormat)
    window.hide()  # the viewer's window alone on the screen, for the tooltip's grab
    try:
        async with open_remote_console(bridge.base_url, token, tmp / "wall",
                                       settings) as wall:
            viewer = wall.window
            viewer.resize(*SIZE)
            viewer.raise_()
            tasks = viewer.tasks_view
            viewer.show_tab(tasks)
            await wait_for(lambda: tasks.select(task_id), "the playing task listed")
            meters = tasks.panel.meters
            await wait_for(lambda: meters.readings > 50, "the viewer's meters moving")
            play = tasks.panel.play_button
            QToolTip.showText(play.mapToGlobal(QPoint(play.width() // 2, play.height())),
                              play.toolTip(), play)
            await asyncio.sleep(0.5)
            path = out_dir / "read-only-console.png"
            frame = viewer.frameGeometry()
            screen = viewer.screen().grabWindow(0, frame.x(), frame.y(), frame.width(),
                                                frame.height())
            picture = screen if not screen.isNull() else viewer.grab()  # offscreen: no tip
            if not picture.save(str(path)):
                raise OSError(f"could not write {path}")
            print(path)
            shots.append(path)
            QToolTip.hideText()
    finally:
        window.show()


async def runners_shot(window: MainWindow, bridge: HubBridge, out_dir: Path,
                       shots: list[Path]) -> None:
    """The local studio's runner and a job running on it, its output followed live."""
    script = ("import time\nfor i in range(1, 201):\n"
              "    print(f'rendering stem {i} of 200', flush=True)\n"
              "    print(f'progress {i / 200}', flush=True)\n    time.sleep(0.1)")
    job = await bridge.submit_job({"kind": "command", "needs": {"cpus": 1},
                                   "payload": {"argv": [sys.executable, "-c", script]}})
    view = window.runners_view
    window.show_tab(view)
    await wait_for(lambda: view.select_runner("runner-1"), "the runner listed")
    await wait_for(lambda: view.jobs.select_job(str(job["id"])), "the job listed")
    await wait_for(lambda: (view.jobs.selected_job() or {}).get("state") == "running"
                   and float((view.jobs.selected_job() or {}).get("progress") or 0) > 0.1,
                   "the job running", within=60)
    view.fetch_log("runner-1")
    await asyncio.sleep(1.0)
    shots.append(save(window, out_dir / "runners.png"))
    await bridge.cancel_job(str(job["id"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="where the PNGs are written")
    parser.add_argument("--settle", type=float, default=2.5, metavar="S",
                        help="seconds to let health checks run before the first capture")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QCoreApplication.setApplicationName("Control Room")
    app.setQuitOnLastWindowClosed(False)
    with asyncio.Runner(loop_factory=lambda: QtEventLoop(app)) as runner:
        runner.run(capture(args.out_dir, args.settle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
