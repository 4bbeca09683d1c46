"""Installing the runner as an OS service: a systemd unit, a launchd plist, a Windows service.

The service runs ``controlroom runner run --data-dir D`` (settings and credentials come
from the data dir, so no secret is written into the service definition). Choices that
keep jobs alive: systemd's ``KillMode=process`` signals only the runner, never its job
sessions, on stop or restart; ``TimeoutStopSec`` leaves the runner time to sign off;
``Restart=on-failure`` brings a crashed runner back (and finds its jobs in the journal),
while exit status 2 — the hub refused its credentials — is not retried.

The file builders are pure (tested without an OS); :func:`install` writes under ``root``
(``/`` normally, a temporary prefix in tests), enables the service only where the OS
service manager really runs, and removes what it wrote when a step fails.
"""

from __future__ import annotations

import plistlib
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend import program

SERVICE = "controlroom-runner"
LABEL = "org.controlroom.runner"
STOP_TIMEOUT_S = 90
Platform = str  # "linux", "macos", "windows"


def runner_argv(data_dir: Path) -> list[str]:
    """The command the service runs (the console executable in a PyInstaller build)."""
    return program.command("app.main", "runner", "run", "--data-dir", str(data_dir))


def systemd_unit(argv: list[str], data_dir: Path, user: str | None = None) -> str:
    """The unit; with ``user``, the service runs as that user (who registered the runner
    and owns its data dir) rather than as root."""
    run_as = f"User={user}\n" if user else ""
    return f"""[Unit]
Description=Control Room runner (render farm jobs)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
{run_as}ExecStart={shlex.join(argv)}
WorkingDirectory={data_dir}
Environment=PYTHONUNBUFFERED=1
# Stop and restart signal the runner only; its jobs run on in their own sessions.
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec={STOP_TIMEOUT_S}
Restart=on-failure
RestartSec=5
# 2: the hub refused the credentials; restarting cannot help.
RestartPreventExitStatus=2

[Install]
WantedBy=multi-user.target
"""


def launchd_plist(argv: list[str], data_dir: Path) -> bytes:
    return plistlib.dumps({
        "Label": LABEL,
        "ProgramArguments": argv,
        "WorkingDirectory": str(data_dir),
        "RunAtLoad": True,
        # Restart after a crash, not after an orderly exit (a sign-off exits 0).
        "KeepAlive": {"SuccessfulExit": False},
        "ExitTimeOut": STOP_TIMEOUT_S,
        "AbandonProcessGroup": True,  # never kill the jobs with the runner
        "StandardOutPath": str(data_dir / "logs" / "launchd.out.log"),
        "StandardErrorPath": str(data_dir / "logs" / "launchd.err.log"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    })


def windows_service_commands(argv: list[str], name: str = SERVICE) -> list[list[str]]:
    """``sc.exe`` commands that create the service, set restart on failure, and start it."""
    bin_path = subprocess.list2cmdline(argv)
    return [
        ["sc.exe", "create", name, "binPath=", bin_path, "start=", "auto",
         "DisplayName=", "Control Room runner"],
        ["sc.exe", "description", name, "Runs render farm jobs for a Control Room hub"],
        ["sc.exe", "failure", name, "reset=", "86400", "actions=", "restart/5000"],
        ["sc.exe", "start", name],
    ]


def target_path(platform: Platform, root: Path) -> Path | None:
    if platform == "linux":
        return root / "etc" / "systemd" / "system" / f"{SERVICE}.service"
    if platform == "macos":
        return root / "Library" / "LaunchDaemons" / f"{LABEL}.plist"
    return None


def systemd_is_running() -> bool:
    """Whether systemd is PID 1 (not in most containers and CI)."""
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


Runner = Callable[[list[str]], None]


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


@dataclass
class Outcome:
    ok: bool
    messages: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def install(platform: Platform, data_dir: Path, root: Path = Path("/"),
            dry_run: bool = False, run: Runner = _run, user: str | None = None) -> Outcome:
    argv = runner_argv(data_dir)
    outcome = Outcome(ok=True)
    if platform == "windows":
        commands = windows_service_commands(argv)
        if dry_run:
            outcome.messages += [subprocess.list2cmdline(c) for c in commands]
            return outcome
        for command in commands:
            try:
                run(command)
            except (OSError, subprocess.CalledProcessError) as exc:
                _try(run, ["sc.exe", "delete", SERVICE])
                return Outcome(False, [f"{command[1]} failed: {_why(exc)}; removed the "
                                       "service again"])
        outcome.messages.append(f"installed and started Windows service {SERVICE}")
        return outcome
    path = target_path(platform, root)
    assert path is not None
    content = (systemd_unit(argv, data_dir, user).encode() if platform == "linux"
               else launchd_plist(argv, data_dir))
    if dry_run:
        outcome.messages += [f"would write {path}:", content.decode()]
        return outcome
    created_dirs = [p for p in reversed(path.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            return Outcome(False, [f"{path} exists already; run 'controlroom runner "
                                   "uninstall' first"])
        path.write_bytes(content)
        outcome.written.append(path)
        outcome.messages.append(f"wrote {path}")
        if platform == "linux":
            if root != Path("/") or not systemd_is_running():
                outcome.messages.append("systemd is not running as PID 1 here (a container "
                                        "or CI?): skipped 'systemctl enable --now "
                                        f"{SERVICE}'; run it on the target machine")
            else:
                run(["systemctl", "daemon-reload"])
                run(["systemctl", "enable", "--now", f"{SERVICE}.service"])
                outcome.messages.append(f"enabled and started {SERVICE}")
        elif root == Path("/") and sys.platform == "darwin":
            run(["launchctl", "load", "-w", str(path)])
            outcome.messages.append(f"loaded {LABEL}")
        else:
            outcome.messages.append("not on macOS: skipped 'launchctl load'")
    except (OSError, subprocess.CalledProcessError) as exc:
        path.unlink(missing_ok=True)
        for directory in reversed(created_dirs):
            _rmdir(directory)
        return Outcome(False, [f"install failed: {_why(exc)}; removed {path}"])
    return outcome


def uninstall(platform: Platform, root: Path = Path("/"), run: Runner = _run) -> Outcome:
    if platform == "windows":
        _try(run, ["sc.exe", "stop", SERVICE])
        _try(run, ["sc.exe", "delete", SERVICE])
        return Outcome(True, [f"removed Windows service {SERVICE}"])
    path = target_path(platform, root)
    assert path is not None
    outcome = Outcome(ok=True)
    live = root == Path("/")
    if platform == "linux" and live and systemd_is_running():
        _try(run, ["systemctl", "disable", "--now", f"{SERVICE}.service"])
    elif platform == "macos" and live and sys.platform == "darwin":
        _try(run, ["launchctl", "unload", "-w", str(path)])
    if path.exists():
        path.unlink()
        outcome.messages.append(f"removed {path}")
        if platform == "linux" and live and systemd_is_running():
            _try(run, ["systemctl", "daemon-reload"])
    else:
        outcome.messages.append(f"nothing to remove: {path} does not exist")
    return outcome


def _try(run: Runner, command: list[str]) -> None:
    try:
        run(command)
    except (OSError, subprocess.CalledProcessError):
        pass


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        detail = (exc.stderr or exc.stdout or "").strip()
        return f"{shlex.join(str(a) for a in exc.cmd)} exited {exc.returncode}" + (
            f": {detail}" if detail else "")
    return str(exc)
