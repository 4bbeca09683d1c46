"""The runner as an OS service: unit, plist and Windows commands, install and clean-up."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.runner import service_files as sf

DATA = Path("/var/lib/controlroom/runner")


def test_the_systemd_unit_keeps_jobs_alive_and_passes_systemd_analyze(tmp_path: Path) -> None:
    unit = sf.systemd_unit(sf.runner_argv(DATA), DATA)
    for line in ("KillMode=process", "Restart=on-failure", "RestartPreventExitStatus=2",
                 f"TimeoutStopSec={sf.STOP_TIMEOUT_S}", "WantedBy=multi-user.target"):
        assert line in unit.splitlines()
    assert "runner run --data-dir /var/lib/controlroom/runner" in unit
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    path = tmp_path / f"{sf.SERVICE}.service"
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_verifier_really_objects_to_a_bad_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    path = tmp_path / "bad.service"
    path.write_text("[Service]\nExecStart=/bin/true\nKillMode=bogus\n")
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert "kill mode" in result.stderr


def test_the_launchd_plist_parses_and_has_the_required_keys() -> None:
    plist = plistlib.loads(sf.launchd_plist(sf.runner_argv(DATA), DATA))
    assert plist["Label"] == sf.LABEL
    assert plist["ProgramArguments"][-4:] == ["runner", "run", "--data-dir", str(DATA)]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["AbandonProcessGroup"] is True
    assert plist["ExitTimeOut"] == sf.STOP_TIMEOUT_S


def test_the_windows_service_command_line_quotes_the_binary_path() -> None:
    argv = [r"C:\Program Files\Control Room\controlroom.exe", "runner", "run", "--data-dir",
            r"C:\ProgramData\controlroom\runner"]
    create, description, failure, start = sf.windows_service_commands(argv)
    assert create[:3] == ["sc.exe", "create", sf.SERVICE]
    assert create[create.index("binPath=") + 1] == (
        r'"C:\Program Files\Control Room\controlroom.exe" runner run --data-dir '
        r"C:\ProgramData\controlroom\runner")
    assert create[create.index("start=") + 1] == "auto"
    assert description[1] == "description"
    assert failure[-2:] == ["actions=", "restart/5000"] and start == ["sc.exe", "start",
                                                                        sf.SERVICE]


def test_install_under_a_root_writes_the_unit_skips_enable_and_uninstall_removes_it(
        tmp_path: Path) -> None:
    calls: list[list[str]] = []
    outcome = sf.install("linux", DATA, tmp_path, run=calls.append)
    unit = tmp_path / "etc/systemd/system/controlroom-runner.service"
    assert outcome.ok and outcome.written == [unit] and unit.exists()
    assert calls == [] and any("skipped 'systemctl enable" in m for m in outcome.messages)
    again = sf.install("linux", DATA, tmp_path, run=calls.append)
    assert not again.ok and "exists already" in again.messages[0]
    assert sf.uninstall("linux", tmp_path, run=calls.append).ok and not unit.exists()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    outcome = sf.install("macos", DATA, tmp_path, dry_run=True)
    assert outcome.ok and "would write" in outcome.messages[0]
    assert not any(tmp_path.iterdir())


def test_a_failed_install_removes_what_it_wrote(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(command: list[str]) -> None:
        raise subprocess.CalledProcessError(1, command, stderr="Access denied")

    monkeypatch.setattr(sf, "systemd_is_running", lambda: True)
    root = tmp_path / "root"
    root.mkdir()
    # A live install (root "/") whose files land under a temporary prefix.
    monkeypatch.setattr(sf, "target_path", lambda p, r: root / "etc/systemd/system/x.service")
    failed = sf.install("linux", DATA, Path("/"), run=refuse)
    assert not failed.ok
    assert "systemctl daemon-reload exited 1: Access denied" in failed.messages[0]
    assert not (root / "etc").exists()  # the file and the directories it made are gone


def test_a_failed_windows_install_deletes_the_service() -> None:
    calls: list[list[str]] = []

    def run(command: list[str]) -> None:
        calls.append(command)
        if command[1] == "failure":
            raise OSError("sc.exe not found")

    outcome = sf.install("windows", DATA, run=run)
    assert not outcome.ok and "failure failed: sc.exe not found" in outcome.messages[0]
    assert calls[-1] == ["sc.exe", "delete", sf.SERVICE]


def test_a_unit_installed_with_sudo_runs_as_the_operator(tmp_path: Path) -> None:
    unit = sf.systemd_unit(sf.runner_argv(DATA), DATA, user="daemon")  # exists on Debian
    assert "User=daemon" in unit.splitlines()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    path = tmp_path / f"{sf.SERVICE}.service"
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
