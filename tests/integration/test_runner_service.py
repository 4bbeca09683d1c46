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
