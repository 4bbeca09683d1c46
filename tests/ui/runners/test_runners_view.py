"""The Runners tab: enroll a real runner from "Add runner…", submit, follow, cancel, logs.

Real embedded hub; the runner is a real process started with the very command the
dialog shows (``controlroom runner register ...`` then ``runner run``), so a wrong
command or a token the hub does not accept fails the test.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QPushButton

from app.console import open_console
from backend.client import ClientError
from tests.ui.harness import ROOT, QtLoop, wait_until
from ui.core.accepts import accepts
from ui.core.shell import TOKEN_ENV
from ui.runners.add_runner_dialog import reachable_url, runner_commands
from ui.runners.job_dialogs import SubmitJobDialog
from ui.runners.jobs_model import PROGRESS, STATE, format_duration
from ui.runners.model import HARDWARE, HEALTH, LABELS, hardware_summary
from ui.runners.view import log_error_text, readable_log

#: Short timings, so a heartbeat and a progress report arrive within the test.
FAST = {"heartbeat_s": 0.5, "report_interval_s": 0.1, "retry_s": 0.5, "grace_s": 1.0}
PROGRESS_JOB = ("import time; [print(f'line {i}', f'progress {i / 8}', sep=chr(10), "
                "flush=True) or time.sleep(0.3) for i in range(1, 9)]")
SLEEPY_JOB = "import time; print('up', flush=True); time.sleep(60)"
#: Half a second of a tone through a dynamic EQ: a render a runner can do on its own.
RENDER_SPEC = {
    "sample_rate": 48000, "block_size": 1024,
    "tracks": [{"id": "tone", "chain": ["eq1"], "source": {
        "type": "tone", "freq_hz": 440, "level_dbfs": -6, "duration_s": 0.5}}],
    "instances": {"eq1": {"model": "eq"}},
    "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"},
}


def click(button: QAbstractButton) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def controlroom(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``[NAME=value ...] controlroom ...`` as a shell and this checkout run it
    (``python -m app.main``): leading assignments go into its environment only."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    while "=" in argv[0] and not argv[0].startswith("-"):
        name, value = argv[0].split("=", 1)
        env[name] = value
        argv = argv[1:]
    assert argv[0] == "controlroom"
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.main", *argv[1:]], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)


def type_command(dialog: SubmitJobDialog, code: str, labels: str = "") -> None:
    dialog.command_edit.clear()
    QTest.keyClicks(dialog.command_edit, shlex.join([sys.executable, "-c", code]))
    dialog.labels.clear()
    QTest.keyClicks(dialog.labels, labels)


def test_enroll_a_runner_then_submit_follow_cancel_and_revoke(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST))
    data = tmp_path / "runner-1"
    log = tmp_path / "runner.out"

    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            view = window.runners_view
            window.show_tab(view)
            await wait_until(lambda: view._last_fetch > 0 and view._refreshing is not None
                             and view._refreshing.done(), "the first refresh")
            assert view.stack.currentIndex() == 0  # the empty state, with what to do

            # Add runner: a fresh token from the hub and the commands that use it.
            click(view.add_button)
            dialog = view.add_dialog
            assert dialog is not None and dialog.isVisible() and not dialog.isModal()
            await wait_until(lambda: dialog.enrollment is not None, "a token")
            assert dialog.enrollment is not None
            token = str(dialog.enrollment["token"])
            assert dialog.token_label.text() == token
            assert "Single use. Expires at" in dialog.expiry_label.text()
            click(dialog.copy_token_button)
            assert QGuiApplication.clipboard().text() == token
            QTest.keyClicks(dialog.labels_edit, "linux,render")
            register = shlex.split(dialog.command_text(0))
            assert register == [f"CONTROLROOM_TOKEN={token}", "controlroom", "runner",
                                "register", "--hub", console.base_url, "--name", "runner-1",
                                "--labels", "linux,render"]  # no --pin: plain HTTP
            assert dialog.command_text(1) == "controlroom runner run"

            # On "the other machine": exactly those commands (plus a private data dir).
            where = ["--data-dir", str(data)]
            processes.append(controlroom([*register, *where, "--config", str(config)], log))
            await wait_until(lambda: processes[0].poll() is not None, "registered")
            assert processes[0].returncode == 0, log.read_text()
            processes.append(controlroom([*shlex.split(dialog.command_text(1)), *where], log))

            def runner() -> dict[str, object]:
                return view.model.find("runner-1") or {}

            await wait_until(lambda: runner().get("state") == "up"
                             and runner().get("phase") == "ready", "runner-1 up and ready")
            await wait_until(lambda: "has joined the hub" in dialog.joined_label.text(),
                             "the dialog saying it joined")
            row = view.model.row_of("runner-1")
            assert row is not None
            cell = view.model.index(row, HEALTH)
            assert cell.data() == "up" and cell.data(Qt.ItemDataRole.DecorationRole) is not None
            assert view.model.index(row, LABELS).data() == "linux, render"
            assert "CPU" in view.model.index(row, HARDWARE).data()
            assert "RAM" in view.model.index(row, HARDWARE).data()
            await wait_until(lambda: runner().get("last_heartbeat") is not None,
                             "a heartbeat shown", within=15)
            dialog.close()

            # A job the hub refuses: the error at the field, the values kept.
            jobs = view.jobs
            click(jobs.submit_button)
            submit = jobs.submit_dialog
            assert submit is not None and submit.isVisible() and not submit.isModal()
            QTest.keyClicks(submit.command_edit, 'echo "unclosed')
            click(submit.submit_button)
            assert "Cannot split this command line" in submit.fields["command"].error.text()
            type_command(submit, PROGRESS_JOB, labels="GPU!")
            click(submit.submit_button)
            await wait_until(lambda: "422" in submit.status.text(), "the hub's refusal")
            error = submit.fields["labels"].error
            assert error.isVisible()
            assert error.text().startswith("'GPU!' is not a valid label")
            assert submit.labels.text() == "GPU!" and "progress" in submit.command_edit.text()
            assert submit.isVisible()

            # Fixed: it runs, its output is followed live and its progress bar fills.
            submit.labels.clear()
            QTest.keyClicks(submit.labels, "linux")
            click(submit.submit_button)
            await wait_until(lambda: not submit.isVisible(), "the dialog closed on success")
            first = jobs.selected_job_id()
            assert first is not None and jobs.model.row_of(first) == 0

            def job(job_id: str) -> dict[str, object]:
                return jobs.model.find(job_id) or {}

            await wait_until(lambda: job(first).get("state") == "running"
                             and "line 2" in jobs.log.toPlainText(), "live output")
            assert "following live" in jobs.log_status.text()
            await wait_until(lambda: job(first).get("state") == "succeeded", "succeeded")
            assert jobs.model.index(0, PROGRESS).data() == "100 %"
            assert jobs.model.index(0, STATE).data() == "succeeded"
            await wait_until(lambda: "complete: succeeded" in jobs.log_status.text(),
                             "the end of the output")
            assert [f"line {i}" for i in range(1, 9)] == [
                line for line in jobs.log.toPlainText().splitlines() if line.startswith("line")]
            assert job(first).get("commands") == []  # the hub takes no cancel any more
            assert not jobs.cancel_button.isEnabled()

            # Cancel: offered only while the job can still be cancelled.
            click(jobs.submit_button)
            type_command(submit, SLEEPY_JOB)
            click(submit.submit_button)
            await wait_until(lambda: not submit.isVisible(), "submitted")
            second = jobs.selected_job_id()
            assert second is not None and second != first
            await wait_until(lambda: job(second).get("state") == "running"
                             and "up" in jobs.log.toPlainText(), "the sleeper running")
            assert job(second).get("commands") == ["cancel"]
            assert jobs.cancel_button.isEnabled()
            click(jobs.cancel_button)
            await wait_until(lambda: job(second).get("state") == "cancelled", "cancelled",
                             within=15)
            assert job(second).get("exit_code") == -signal.SIGTERM
            assert not jobs.cancel_button.isEnabled()

            # A finished job shows its whole log.
            assert jobs.select_job(first)
            await wait_until(lambda: jobs.log_status.text() == "complete", "the whole log")
            assert "line 8" in jobs.log.toPlainText()
            assert not jobs.artifacts_row.isVisible()  # a command job made no files

            # A render job from a spec file: a broken file and a wrong spec are pointed
            # at, then the farm renders it and the WAV is saved from the details.
            click(jobs.submit_button)
            submit.kind.setCurrentIndex(submit.kind.findData("render"))
            assert submit.pages.currentIndex() == 1
            spec_file = tmp_path / "spec.json"
            spec_file.write_text("{not json")
            QTest.keyClicks(submit.spec_edit, str(spec_file))
            submit.output_edit.clear()
            QTest.keyClicks(submit.output_edit, "mix.wav")
            click(submit.submit_button)
            await wait_until(lambda: submit.fields["spec"].error.isVisible(), "a JSON error")
            assert "spec.json is not JSON" in submit.fields["spec"].error.text()
            spec_file.write_text(json.dumps({**RENDER_SPEC, "tracks": "none"}))
            click(submit.submit_button)
            await wait_until(lambda: "422" in submit.status.text(), "the hub's refusal")
            assert submit.fields["spec"].error.text().startswith("tracks: ")
            spec_file.write_text(json.dumps(RENDER_SPEC))
            click(submit.submit_button)
            await wait_until(lambda: not submit.isVisible(), "the render submitted")
            render = jobs.selected_job_id()
            assert render is not None and job(render).get("kind") == "render"
            await wait_until(lambda: job(render).get("state") == "succeeded",
                             "the render done", within=40)
            await wait_until(jobs.artifacts_row.isVisible, "its file offered")
            assert jobs.artifacts.currentText() == "mix.wav"
            saved = tmp_path / "saved.wav"
            await jobs.save_artifact(render, "mix.wav", saved)
            assert saved.read_bytes()[:4] == b"RIFF" and saved.stat().st_size > 48000

            # The runner's own log, fetched through the hub.
            assert view.select_runner("runner-1")
            click(view.log_button)
            await wait_until(lambda: "registered with" in view.log_panel.text.toPlainText(),
                             "the runner's log")
            assert not view.log_panel.error.isVisible()

            # Revoke, after a non-modal question; its log then cannot be fetched.
            click(view.revoke_button)
            box = view.revoke_box
            assert box is not None and box.isVisible() and not box.isModal()
            revoke = next(b for b in box.findChildren(QPushButton) if b.text() == "Revoke")
            click(revoke)
            await wait_until(lambda: runner().get("phase") == "revoked"
                             and runner().get("state") == "down", "revoked and down")
            assert not view.revoke_button.isEnabled()
            click(view.log_button)
            await wait_until(view.log_panel.error.isVisible, "the log error")
            assert "is not connected to the hub right now" in view.log_panel.error.text()
            await wait_until(lambda: processes[1].poll() is not None, "the runner exits")

    try:
        qt_loop.run(scenario(), timeout=90)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def test_words_the_operator_reads(qt_loop: QtLoop) -> None:
    assert hardware_summary({"cpu": {"threads": 8}, "memory": {"total_mb": 7680},
                             "gpus": [{"name": "A", "memory_mb": 8192}]}) \
        == "8 CPUs · 7.5 GB RAM · 1 GPU"
    assert hardware_summary({}) == "not reported yet"
    url, warning = reachable_url("http://127.0.0.1:8750")
    assert url == "http://127.0.0.1:8750" and "--host 0.0.0.0" in warning
    url, warning = reachable_url("http://0.0.0.0:8750")
    assert url.endswith(":8750") and "0.0.0.0" not in url and warning == ""
    assert runner_commands("http://h:1", "cre_x", "r 1", "")[0] == \
        "CONTROLROOM_TOKEN=cre_x controlroom runner register --hub http://h:1 --name 'r 1'"
    assert runner_commands("https://h:1", "cre_x", "r1", "gpu", "sha256:ab")[0] == (
        "CONTROLROOM_TOKEN=cre_x controlroom runner register --hub https://h:1 --name r1 "
        "--labels gpu --pin sha256:ab")
    assert "504" not in log_error_text("r1", ClientError("slow", 504))
    assert "did not send its log within 5 s" in log_error_text("r1", ClientError("", 504))
    assert readable_log('{"ts": "2026-01-01T00:00:00.5Z", "level": "warning", '
                        '"msg": "hello", "job": "j_1"}\nnot json').endswith(
        ".500  warning  hello  job=j_1\nnot json")
    assert format_duration(75) == "1:15" and format_duration(3.4) == "3.4 s"


def test_cancel_is_offered_only_when_the_job_lists_it() -> None:
    """The hub's ``commands`` decide, not the state; a hub that lists none (an older
    version) gets no Cancel offered, and no error."""
    assert accepts({"state": "running", "commands": ["cancel"]}, "cancel")
    assert not accepts({"state": "running", "commands": []}, "cancel")
    assert not accepts({"state": "running"}, "cancel")
    assert not accepts({"state": "queued", "commands": "cancel"}, "cancel")
    assert not accepts(None, "cancel")
