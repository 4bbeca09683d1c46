"""``controlroom runner register|run|stop``: the runner's first start split in two (seed 001).

``register`` exchanges the enrollment token for an id and secret (``credentials.json``,
0600) and saves the runner's settings (``runner.json``) in its data dir, so ``run`` —
what the OS service starts — needs no flags. ``agent runner`` does both in one go.
``stop`` asks a running runner (``runner.pid``) to sign off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
import psutil

from app import logs
from app.paths import APP
from app.signals import stop_on_signals
from app.tls_cli import pin_argument
from backend.agents import (
    AgentSession,
    SessionSettings,
    agent_channel_url,
    credentials,
    hub_http_base,
    static_config,
)
from backend.client import TOKEN_ENV, AttachError, ClientError, HubClient, trust_for
from backend.errors import AgentFatal
from backend.hub import deep_merge

log = logging.getLogger(__name__)

SETTINGS = "runner.json"
PIDFILE = "runner.pid"
REGISTER_TIMEOUT_S = 20.0


def default_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / "runner"


def sudo_user_dir(env: Mapping[str, str] | None = None) -> tuple[str, Path] | None:
    """Under ``sudo``, the invoking user and the runner data dir ``runner register`` gave
    them; None when not under sudo (or as root itself).

    ``runner install`` must run as root to write the service file, but the runner was
    registered as the operator, into the operator's data dir: without this, ``sudo
    controlroom runner install`` looked in root's data dir and found no runner.
    """
    env = os.environ if env is None else env
    user = env.get("SUDO_USER")
    if not user or user == "root" or sys.platform == "win32":
        return None
    try:
        import pwd

        home = Path(pwd.getpwnam(user).pw_dir)
    except (ImportError, KeyError):
        return None
    if sys.platform == "darwin":
        return user, home / "Library" / "Application Support" / APP / "runner"
    return user, home / ".local" / "share" / APP / "runner"


def add_parser(sub: Any) -> None:
    runner = sub.add_parser("runner", help="register, run or stop a runner (render farm)")
    actions = runner.add_subparsers(dest="runner_command", metavar="ACTION", required=True)
    register = actions.add_parser("register", help="exchange an enrollment token for "
                                  "credentials and save the runner's settings")
    register.add_argument("--hub", required=True, metavar="URL")
    register.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                          help=f"one-time enrollment token; ${TOKEN_ENV} instead keeps it "
                          "off the command line, where any local user could read it")
    register.add_argument("--pin", type=pin_argument, metavar="SHA256",
                          help="the hub certificate's fingerprint, as the enrollment gave it "
                          "(for an https:// hub with its own certificate)")
    register.add_argument("--name", default=socket.gethostname().split(".")[0] or "runner")
    register.add_argument("--labels", default="", metavar="A,B")
    register.add_argument("--config", type=Path, default=None, metavar="FILE",
                          help="static config, JSON or TOML (heartbeat_s, grace_s, ...)")
    install = actions.add_parser("install", help="install and enable the runner as an OS "
                                 "service (systemd, launchd or a Windows service)")
    install.add_argument("--dry-run", action="store_true", help="print what would be written")
    uninstall = actions.add_parser("uninstall", help="remove the OS service")
    for action in (install, uninstall):
        action.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                            help="install under this prefix instead of / (for tests)")
        action.add_argument("--platform", choices=("linux", "macos", "windows"),
                            default=_this_platform())
    for action in (register, actions.add_parser("run", help="run the registered runner"),
                   actions.add_parser("stop", help="ask the running runner to sign off"),
                   install, uninstall):
        action.add_argument("--data-dir", type=Path, default=None,
                            help="the runner's data dir (default: the user data dir)")
        action.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                            default="info")


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir or default_dir()
    if args.runner_command == "stop":
        return stop(data_dir)
    if args.runner_command in ("install", "uninstall"):
        return service(args, data_dir)
    logs.setup(args.log_level, data_dir / "logs" / "agent.log", "runner")
    if args.runner_command == "register":
        return register(args, data_dir)
    try:
        settings = load_settings(data_dir)
    except ValueError as exc:
        print(f"controlroom runner: {exc}", file=sys.stderr)
        return 2
    return run_agent(settings)


def _this_platform() -> str:
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")


def service(args: argparse.Namespace, data_dir: Path) -> int:
    from backend.runner import service_files

    if args.runner_command == "install":
        user = None
        invoker = sudo_user_dir()
        if invoker is not None:
            user = invoker[0]  # the service runs as the operator, not as root
            if args.data_dir is None:
                data_dir = invoker[1]
        if not args.dry_run and not (data_dir / SETTINGS).exists():
            print(f"controlroom runner install: no runner is registered in {data_dir}; run "
                  "'controlroom runner register' first (or pass --data-dir, the dir it "
                  "registered into)", file=sys.stderr)
            return 2
        outcome = service_files.install(args.platform, data_dir.resolve(), args.root,
                                        args.dry_run, user=user)
    else:
        outcome = service_files.uninstall(args.platform, args.root)
    for message in outcome.messages:
        print(message, file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


# -- settings -------------------------------------------------------------------------


def save_settings(settings: SessionSettings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SETTINGS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"hub": settings.hub_url, "name": settings.name,
                               "config": settings.static_config}, indent=2))
    os.replace(tmp, path)


def load_settings(data_dir: Path) -> SessionSettings:
    path = data_dir / SETTINGS
    try:
        raw = json.loads(path.read_text())
    except OSError:
        raise ValueError(f"no runner is registered in {data_dir} (no {SETTINGS}); run "
                         "'controlroom runner register --hub URL --token T' first") from None
    if credentials.load(data_dir) is None:
        raise ValueError(f"{data_dir} has settings but no credentials.json; register again")
    return SessionSettings(hub_url=raw["hub"], name=raw["name"], kind="runner",
                           data_dir=data_dir, static_config=raw.get("config") or {})


# -- register -------------------------------------------------------------------------


def register(args: argparse.Namespace, data_dir: Path) -> int:
    try:
        if not args.token:
            raise ValueError(f"no enrollment token: set ${TOKEN_ENV} (or pass --token); "
                             "the console's Runners tab ▸ Add a runner… makes one")
        agent_channel_url(args.hub)
        config = static_config("runner", args.config, args.name)
    except ValueError as exc:
        print(f"controlroom runner register: {exc}", file=sys.stderr)
        return 2
    labels = [x for x in args.labels.split(",") if x]
    if labels:
        config = deep_merge(config, {"labels": labels})
    settings = SessionSettings(hub_url=args.hub, name=args.name, kind="runner",
                               data_dir=data_dir, token=args.token, pin=args.pin,
                               static_config=config)
    problem = asyncio.run(_enroll(settings))
    if problem is not None:
        print(f"controlroom runner register: {problem}", file=sys.stderr)
        return 2
    save_settings(settings)
    print(f"registered runner {args.name} with {args.hub}; settings and credentials in "
          f"{data_dir}. Start it with: controlroom runner run --data-dir {data_dir}")
    return 0


async def _enroll(settings: SessionSettings) -> str | None:
    """Connect once with the token; ``None`` on success, else exactly why not."""
    base = hub_http_base(settings.hub_url)
    try:
        trust = await trust_for(base, settings.pin or "")
        async with HubClient(base, timeout=5, trust=trust) as client:
            await client.health()
    except AttachError as exc:
        return exc.message
    except ClientError as exc:
        return f"hub {settings.hub_url} unreachable: {exc.message}"
    session = AgentSession(settings)
    running = asyncio.create_task(session.run())
    waiter = asyncio.create_task(session.connected.wait())
    done, _ = await asyncio.wait({running, waiter}, timeout=REGISTER_TIMEOUT_S,
                                 return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if running in done:
        error = running.exception()
        return str(error) if error else "the session ended before the hub answered"
    if not done:
        running.cancel()
        return f"hub {settings.hub_url} did not answer within {REGISTER_TIMEOUT_S:g} s"
    await session.stop()
    await asyncio.gather(running, return_exceptions=True)
    return None


# -- run and stop ---------------------------------------------------------------------


async def serve(settings: SessionSettings) -> int:
    from app.agent import attach_role
    from backend.runner import Runner

    session = AgentSession(settings)
    runner = attach_role(session, "runner")
    assert isinstance(runner, Runner)
    pidfile = settings.data_dir / PIDFILE
    pidfile.write_text(f"{os.getpid()}\n")
    await runner.start()
    stop_on_signals(runner.sign_off, f"runner {settings.name}")
    try:
        await session.run()
    except AgentFatal as exc:
        log.error("%s", exc)
        return 2
    finally:
        pidfile.unlink(missing_ok=True)
    log.info("runner %s signed off", settings.name)
    return 0


def run_agent(settings: SessionSettings) -> int:
    """``agent runner`` and ``runner run``: save the settings (so ``run`` needs no flags)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    save_settings(settings)
    return asyncio.run(serve(settings))


def stop(data_dir: Path, timeout_s: float = 60.0) -> int:
    try:
        pid = int((data_dir / PIDFILE).read_text())
    except (OSError, ValueError):
        print(f"controlroom runner stop: no runner is running from {data_dir}",
              file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (data_dir / PIDFILE).unlink(missing_ok=True)
        print(f"controlroom runner stop: runner {pid} is gone", file=sys.stderr)
        return 1
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"runner {pid} signed off")
            return 0
        time.sleep(0.05)
    print(f"controlroom runner stop: runner {pid} still running after {timeout_s:g} s",
          file=sys.stderr)
    return 1


def _alive(pid: int) -> bool:
    """Still running (an exited child its parent has not reaped yet counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
