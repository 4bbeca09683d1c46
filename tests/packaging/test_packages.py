"""The tarball's install scripts and the .deb, installed, used and removed as a user would.

The .deb test installs into the real system with ``apt-get`` and so needs root (CI and
``make test`` run as root; elsewhere it is skipped and says why). Whatever happens, it
removes the package again, so a failed run never leaves a ``controlroom`` on the PATH that
would shadow the venv's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from processes import HubProcess

from backend import __version__

UNIT = Path("/etc/systemd/system/controlroom-runner.service")


def run(*argv: str | Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_install_sh_for_one_user_then_uninstall_keeps_the_data(
        bundle: Path, package_script: ModuleType, tmp_path: Path) -> None:
    top: Path = package_script.stage_tarball(bundle, tmp_path / "stage")
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    installed = run(top / "install.sh", env=env)
    assert installed.returncode == 0, installed.stderr
    assert "is not on your PATH" in installed.stdout  # ~/.local/bin is not, here

    command = home / ".local" / "bin" / "controlroom"
    version = run(command, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"controlroom {__version__}"
    prefix = home / ".local" / "opt" / "controlroom"
    desktop = home / ".local" / "share" / "applications" / "controlroom.desktop"
    assert f"Exec={prefix}/ControlRoom\n" in desktop.read_text()
    assert run("desktop-file-validate", desktop).stdout == ""
    icon = home / ".local" / "share" / "icons" / "hicolor" / "scalable" / "apps" / \
        "controlroom.svg"
    assert icon.read_bytes().startswith(b"<")
    # PyInstaller's symlinks survived the copies
    assert any(p.is_symlink() for p in (prefix / "_internal").iterdir())

    data = home / ".local" / "share" / "controlroom" / "hub"
    data.mkdir(parents=True)
    (data / "hub.sqlite3").write_bytes(b"the operator's work")
    removed = run(prefix / "uninstall.sh", env=env)
    assert removed.returncode == 0, removed.stderr
    for gone in (command, desktop, icon, prefix):
        assert not os.path.lexists(gone), gone
    assert (data / "hub.sqlite3").read_bytes() == b"the operator's work"
    again = run(top / "uninstall.sh", env=env)
    assert again.returncode == 1 and "no Control Room installed" in again.stderr


def test_install_sh_says_how_to_use_it(bundle: Path, package_script: ModuleType,
                                       tmp_path: Path) -> None:
    top: Path = package_script.stage_tarball(bundle, tmp_path / "stage")
    bad = run(top / "install.sh", "--everywhere", env={"PATH": "/usr/bin:/bin",
                                                       "HOME": str(tmp_path)})
    assert bad.returncode == 2 and "--system" in bad.stderr


def installed(package: str) -> bool:
    status = run("dpkg-query", "-W", "-f=${Status}", package).stdout
    return "install ok installed" in status


@pytest.mark.skipif(os.geteuid() != 0, reason="installs a .deb into the system: needs root "
                    "(CI and `make test` run as root)")
def test_deb_installs_runs_and_removes_everything_but_the_data(
        bundle: Path, package_script: ModuleType, tmp_path: Path) -> None:
    assert not installed("controlroom"), (
        "a controlroom package is already installed here; remove it first "
        "(apt-get remove controlroom): this test must not replace someone's install")
    assert not UNIT.exists(), f"{UNIT} exists already; this test would remove it"
    deb: Path = package_script.deb(bundle, tmp_path, fast=True, check=False)
    package_script.lintian(deb)  # raises on any error
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    hub = None
    try:
        done = run("apt-get", "install", "-y", "--no-install-recommends", deb, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert shutil.which("controlroom", path="/usr/bin") == "/usr/bin/controlroom"
        assert Path("/usr/share/applications/controlroom.desktop").exists()

        hub = HubProcess(tmp_path / "hub", program=("/usr/bin/controlroom",)).start()
        assert httpx.get(f"{hub.url}/api/v1/health").json()["status"] == "ok"

        # A runner installed as a service from the package's executable...
        runner_dir = tmp_path / "runner"
        registered = run("/usr/bin/controlroom", "runner", "register", "--hub", hub.url,
                         "--token", hub.enroll("runner"), "--name", "r1",
                         "--data-dir", runner_dir)
        assert registered.returncode == 0, registered.stderr
        service = run("/usr/bin/controlroom", "runner", "install", "--data-dir", runner_dir)
        assert service.returncode == 0, service.stderr
        assert "ExecStart=/opt/controlroom/controlroom runner run" in UNIT.read_text()

        # ...goes with the package: nothing is left to point at a deleted binary.
        removed = run("apt-get", "remove", "-y", "controlroom", env=env)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        for gone in (UNIT, Path("/opt/controlroom"), Path("/usr/bin/controlroom"),
                     Path("/usr/share/applications/controlroom.desktop")):
            assert not os.path.lexists(gone), gone
        assert (runner_dir / "runner.json").exists()  # the operator's data stays
    finally:
        if hub is not None:
            hub.close()
        if installed("controlroom"):
            run("dpkg", "--purge", "controlroom")
        if UNIT.exists() and "/opt/controlroom/" in UNIT.read_text():
            UNIT.unlink()
