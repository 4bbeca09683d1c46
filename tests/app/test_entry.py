"""The bundle's entry point and the crash report, without a bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app import crash, logs
from app.cli import build_parser, remote_console_problem

ROOT = Path(__file__).resolve().parents[2]


def entry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.entry", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_dash_m_runs_an_internal_module_with_its_arguments(tmp_path: Path) -> None:
    # a job's shim, as a frozen runner starts it: it runs the job and records its end
    (tmp_path / "launch.json").write_text(json.dumps(
        {"argv": ["/bin/sh", "-c", "echo from the job; exit 3"], "cwd": None, "env": {}}))
    result = entry("-m", "backend.runner.shim", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "output.log").read_text() == "from the job\n"
    assert json.loads((tmp_path / "exit.json").read_text())["exit_code"] == 3


def test_dash_m_refuses_anything_else() -> None:
    result = entry("-m", "http.server")
    assert result.returncode == 2 and "-m takes one of app.main" in result.stderr
    assert entry("-m").returncode == 2


def test_anything_else_is_the_controlroom_command_line() -> None:
    result = entry("--version")
    assert result.returncode == 0 and result.stdout.startswith("controlroom ")


def test_the_crash_message_names_the_error_and_the_log_file(tmp_path: Path) -> None:
    logs.setup("info", tmp_path / "logs" / "controlroom.log", "test")
    try:
        title, text = crash.message(KeyError("spec"), ended=True)
        assert title == "Control Room stopped because of an error"
        assert "KeyError: 'spec'" in text and str(tmp_path / "logs" / "controlroom.log") in text
        title, text = crash.message(ValueError("bad"), ended=False)
        assert "keeps running" in text
        crash.excepthook(ValueError, ValueError("bad"), None)  # offscreen: logged only
        assert "an error escaped a window action" in (tmp_path / "logs" /
                                                      "controlroom.log").read_text()
    finally:
        logs.setup("info", None, "test")


def test_local_studio_needs_the_window() -> None:
    args = build_parser().parse_args(["--headless", "--local-studio"])
    assert "--local-studio starts agents from the console window" in str(
        remote_console_problem(args))
    assert remote_console_problem(build_parser().parse_args(["--local-studio"])) is None


def test_app_main_through_dash_m() -> None:
    result = entry("-m", "app.main", "--version")
    assert result.returncode == 0 and "controlroom" in result.stdout
