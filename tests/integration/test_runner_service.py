"""``controlroom runner install|uninstall`` from the command line, under a --root prefix."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

from runner_farm import controlroom


def test_install_dry_run_install_and_uninstall(tmp_path: Path) -> None:
    data = tmp_path / "runner"
    root = tmp_path / "root"
    unregistered = controlroom("runner", "install", "--data-dir", str(data), "--root", str(root))
    assert unregistered.returncode == 2 and "runner register" in unregistered.stderr
    data.mkdir()
    (data / "runner.json").write_text(json.dumps({"hub": "http://h:1", "name": "r1"}))
    dry = controlroom("runner", "install", "--dry-run", "--platform", "linux",
                      "--data-dir", str(data), "--root", str(root))
    assert dry.returncode == 0 and "KillMode=process" in dry.stdout
    assert not root.exists()
    done = controlroom("runner", "install", "--platform", "linux", "--data-dir", str(data),
                       "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert "systemd is not running as PID 1" in done.stdout
    unit = root / "etc/systemd/system/controlroom-runner.service"
    assert f"--data-dir {data}" in unit.read_text()
    mac = controlroom("runner", "install", "--platform", "macos", "--data-dir", str(data),
                      "--root", str(root))
    assert mac.returncode == 0, mac.stderr
    plist = plistlib.loads((root / "Library/LaunchDaemons/org.controlroom.runner.plist")
                           .read_bytes())
    assert plist["ProgramArguments"][-1] == str(data)
    for platform in ("linux", "macos"):
        gone = controlroom("runner", "uninstall", "--platform", platform, "--root", str(root))
        assert gone.returncode == 0 and "removed" in gone.stdout
    assert not unit.exists()


def test_install_under_sudo_finds_the_runner_the_operator_registered(tmp_path: Path) -> None:
    """``sudo controlroom runner install`` runs as root, but the runner was registered as
    the operator: it looks in the operator's data dir, and the service runs as them."""
    import os
    import subprocess
    import sys

    from processes import QTBLOCK, ROOT

    env = {**os.environ, "SUDO_USER": "nobody"}  # home /nonexistent on Debian
    done = subprocess.run(
        [sys.executable, QTBLOCK, "-m", "app.main", "runner", "install", "--platform",
         "linux", "--root", str(tmp_path / "root")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 2
    assert "no runner is registered in /nonexistent/.local/share/controlroom/runner" in (
        done.stderr)
    data = tmp_path / "runner"
    data.mkdir()
    (data / "runner.json").write_text(json.dumps({"hub": "http://h:1", "name": "r1"}))
    dry = subprocess.run(
        [sys.executable, QTBLOCK, "-m", "app.main", "runner", "install", "--dry-run",
         "--platform", "linux", "--data-dir", str(data), "--root", str(tmp_path / "root")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "User=nobody" in dry.stdout and f"--data-dir {data}" in dry.stdout
