"""Entry point of the ``controlroom`` console script: pick the mode and run it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from app import cli, logs, paths
from app.display import has_display
from backend.agents import Backoff, SessionSettings, agent_channel_url, static_config
from backend.client import TOKEN_ENV
from backend.host import HostSettings, Upstream
from backend.hub import HealthSettings
from backend.protocol import NAME_PATTERN
from backend.tls import TlsSettings


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.build_parser().parse_args(argv)
    if args.command in ("agent", "runner"):
        # Read (into args.token) and gone: nothing this process starts (job programs, flow
        # workers, render processes) inherits an enrollment token.
        os.environ.pop(TOKEN_ENV, None)
    if args.command == "agent":
        return _agent(args)
    if args.command == "task":
        from app import task_cli

        return task_cli.run(args, args.data_dir or paths.default_hub_dir())
    if args.command == "runner":
        from app import runner_cli

        return runner_cli.run(args)
    if args.command == "tls":
        from app import tls_cli

        return tls_cli.run(args, paths.default_hub_dir())
    problem = cli.remote_console_problem(args)
    if problem:
        print(f"controlroom: {problem}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or paths.default_hub_dir()
    logs.setup(args.log_level, data_dir / "logs" / "controlroom.log",
               "console" if args.hub else "hub")
    try:
        health = HealthSettings(args.health_interval, args.health_timeout, args.health_misses)
        if args.auth_failures < 1:
            raise ValueError(f"--auth-failures must be >= 1, got {args.auth_failures}")
        if args.media_limit_mb < 1:
            raise ValueError(f"--media-limit-mb must be >= 1 (MiB), got {args.media_limit_mb}")
    except ValueError as exc:
        print(f"controlroom: {exc}", file=sys.stderr)
        return 2
    upstream = None
    if args.upstream:
        upstream = Upstream(url=args.upstream, name=args.name,
                            token=args.token or os.environ.pop(TOKEN_ENV, None) or None,
                            pin=args.pin)
    settings = HostSettings(
        data_dir=data_dir, host=args.host, port=args.port, role=args.role,
        health=health, upstream=upstream, runner_lease_s=args.runner_lease,
        tls=TlsSettings(args.tls, args.tls_cert, args.tls_key),
        auth_failures=args.auth_failures, auth_window_s=args.auth_window,
        media_limit_bytes=args.media_limit_mb * 1024 * 1024,
    )
    if args.hub and not has_display():
        print("controlroom: --hub opens the console window, but no display was found "
              "(DISPLAY and WAYLAND_DISPLAY are unset); run it on a machine with a screen.",
              file=sys.stderr)
        return 2
    if not args.headless and not has_display():
        print("controlroom: no display found (DISPLAY and WAYLAND_DISPLAY are unset); "
              "running headless. Open the console on a machine with a screen, or pass "
              "--headless to silence this message.", file=sys.stderr)
        args.headless = True
    if args.headless:
        from app import headless

        return headless.run(settings)
    from app import desktop

    if args.hub:  # the console attached to a hub elsewhere; nothing is served here
        return desktop.run(settings, hub=args.hub, token=args.token, pin=args.pin,
                           token_file=args.token_file, local_studio=args.local_studio)
    return desktop.run(settings, local_studio=args.local_studio)


def _agent(args: argparse.Namespace) -> int:
    kind: str = args.kind
    name: str = args.name
    data_dir = args.data_dir or paths.default_agent_dir(kind, name)
    logs.setup(args.log_level, data_dir / "logs" / "agent.log", f"{kind}:{name}")
    try:
        if not re.match(NAME_PATTERN, name):
            raise ValueError(
                f"--name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        agent_channel_url(args.hub)
        config = static_config(kind, args.config, name)
        if kind == "runner":
            config["labels"] = [x for x in args.labels.split(",") if x] or config["labels"]
        settings = SessionSettings(
            hub_url=args.hub, name=name, kind=kind, data_dir=data_dir,
            token=args.token, pin=args.pin, static_config=config, backoff=Backoff(),
        )
    except ValueError as exc:
        print(f"controlroom agent: {exc}", file=sys.stderr)
        return 2
    if kind == "node":
        from app import node_agent

        return node_agent.run(settings, args)
    if kind == "runner":
        from app import runner_cli

        return runner_cli.run_agent(settings)
    from app import agent

    return agent.run(settings)


if __name__ == "__main__":
    sys.exit(main())
