"""The command line: ``controlroom`` (console), ``--headless``, ``agent KIND``."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from app import runner_cli, task_cli, tls_cli
from backend import __version__
from backend.agents import AGENT_COMMAND_KINDS
from backend.client import TOKEN_ENV
from backend.host import DEFAULT_PORT

LOG_LEVELS = ("debug", "info", "warning", "error")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0 picks a free one), got {text}")
    return value




def remote_console_problem(args: argparse.Namespace) -> str | None:
    """Why ``--hub``/``--token-file`` cannot go with the other options given, if they cannot."""
    if args.local_studio and args.headless:
        return ("--local-studio starts agents from the console window, and --headless runs "
                "no window; start agents on a headless machine with `controlroom agent "
                "KIND --hub URL --token T` (see the Agents tab's Add a remote agent…)")
    if (args.tls_cert is None) != (args.tls_key is None):
        return "give both --tls-cert and --tls-key (a certificate and its key), or neither"
    if args.pin and not (args.hub or args.upstream):
        return ("--pin is the certificate fingerprint of a remote hub: give the hub too "
                "(--hub or --upstream https://HOST:8750 --pin sha256:…)")
    if args.token_file is not None and not args.hub:
        return ("--token-file is the operator token of a remote hub: give the hub too "
                "(--hub URL --token-file PATH)")
    if not args.hub:
        return None
    if args.headless:
        return ("--hub opens the console window attached to a hub running elsewhere, and "
                "--headless runs a hub with no window; use one or the other (a hub for "
                "remote consoles: controlroom --headless --host 0.0.0.0)")
    if args.upstream:
        return ("--upstream registers a hub this process runs with a cloud hub, but with "
                "--hub no hub runs here; start the remote hub with --upstream instead")
    if args.token and args.token_file is not None:
        return "give the operator token once: --token or --token-file, not both"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="controlroom",
        description="Operator console for a networked audio studio and its render farm. "
        "With no arguments it opens the console with an embedded hub and node service; "
        "with --hub URL it opens the console attached to a hub running elsewhere.",
    )
    parser.add_argument("--version", action="version", version=f"controlroom {__version__}")
    parser.add_argument("--headless", action="store_true",
                        help="run hub + node service without a window (no Qt import)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the hub keeps its database, token and logs "
                        "(default: the user data dir); with --hub, where this console keeps "
                        "its logs and the agents it spawns")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: loopback only)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    tls = parser.add_argument_group(
        "TLS", "A hub listening beyond loopback serves HTTPS and WSS only, with a "
        "self-signed certificate it makes in DATA/tls (agents pin its fingerprint at "
        "enrollment) unless given one of a studio or public CA.")
    tls.add_argument("--tls", choices=("auto", "on"), default="auto",
                     help="auto: TLS whenever --host is not loopback (default); on: on "
                     "loopback too")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM",
                     help="serve this certificate (chain) instead of a self-signed one")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="the key of --tls-cert")
    parser.add_argument("--role", choices=("studio", "cloud"), default="studio",
                        help="studio: hub + node service (default); cloud: a hub that "
                        "studio hubs register with")
    parser.add_argument("--upstream", metavar="URL",
                        help="register this hub with a cloud-role hub at URL")
    parser.add_argument("--name", default=f"hub-{socket.gethostname()}",
                        help="this hub's component id at the upstream (default hub-HOSTNAME)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="with --hub: the remote hub's operator token (DATA/admin.token "
                        "on the hub's machine; prefer --token-file or $CONTROLROOM_TOKEN, "
                        "which keep it off the command line). With --upstream: a one-time "
                        "enrollment token for the upstream (first start only)")
    remote = parser.add_argument_group(
        "console attached to a remote hub",
        "Open the console on a hub started elsewhere (e.g. `controlroom --headless --host "
        "0.0.0.0` on the studio's server) instead of embedding one; no hub or node service "
        "runs here, closing the console leaves the hub running, and agents spawned from "
        "the Agents tab join the remote hub.")
    remote.add_argument("--hub", metavar="URL",
                        help="the remote hub's base URL (its DATA/hub.url), e.g. "
                        "http://studio:8750; needs its operator token")
    remote.add_argument("--pin", type=tls_cli.pin_argument, metavar="SHA256",
                        help="the remote hub's (or, with --upstream, the cloud hub's) "
                        "certificate fingerprint (`controlroom tls show` on its machine); "
                        "not needed for a certificate of a CA this system trusts")
    remote.add_argument("--token-file", type=Path, metavar="PATH",
                        help="read the remote hub's operator token from PATH (a copy of its "
                        "DATA/admin.token)")
    parser.add_argument("--local-studio", action="store_true",
                        help="as the console opens, start an engine, two instance drivers "
                        "and a runner on this machine (what Components ▸ Start a local "
                        "studio does), e.g. for a studio PC that opens the console at login")
    parser.add_argument("--health-interval", type=_positive, default=1.0, metavar="S",
                        help="seconds between health checks (default 1)")
    parser.add_argument("--health-timeout", type=_positive, default=0.5, metavar="S",
                        help="seconds before a check counts as missed (default 0.5)")
    parser.add_argument("--health-misses", type=int, default=3, metavar="N",
                        help="missed checks in a row before down (default 3)")
    parser.add_argument("--runner-lease", type=_positive, default=300.0, metavar="S",
                        help="seconds a runner may be away before its running jobs are "
                        "marked lost (default 300)")
    parser.add_argument("--auth-failures", type=int, default=20, metavar="N",
                        help="failed authentications allowed per client address and per "
                        "credential in --auth-window before 429 (default 20); valid tokens "
                        "are never refused")
    parser.add_argument("--auth-window", type=_positive, default=60.0, metavar="S",
                        help="the window of --auth-failures, in seconds (default 60)")
    parser.add_argument("--media-limit-mb", type=int, default=4096, metavar="MIB",
                        help="the largest media file the hub takes in one upload "
                        "(PUT /api/v1/media/SHA256), in MiB (default 4096); larger ones "
                        "are refused with 413")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    agent = sub.add_parser("agent", help="run one headless agent that joins a hub")
    agent.add_argument("kind", choices=AGENT_COMMAND_KINDS)
    agent.add_argument("--hub", required=True, metavar="URL",
                       help="the hub's base URL, http(s):// or ws(s)://")
    agent.add_argument("--name", required=True,
                       help="the component's id at the hub (letters, digits, . _ -)")
    agent.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                       help="one-time enrollment token (first start only); "
                       f"${TOKEN_ENV} instead keeps it off the command line, where any "
                       "local user could read it")
    agent.add_argument("--pin", type=tls_cli.pin_argument, metavar="SHA256",
                       help="the hub certificate's fingerprint, as its enrollment gave it "
                       "(first start only: it is kept with the credentials)")
    agent.add_argument("--data-dir", type=Path, default=None,
                       help="where credentials and logs are kept "
                       "(default: the user data dir, per kind and name)")
    agent.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="static config, JSON or TOML, laid over the kind's defaults")
    agent.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    node = agent.add_argument_group("node only")
    node.add_argument("--port", dest="node_port", type=_port, default=8751,
                      help="port the node serves /node/v1 on (default 8751; 0 picks one)")
    node.add_argument("--listen", dest="node_host", default="127.0.0.1", metavar="HOST",
                      help="address the node listens on (default 127.0.0.1)")
    node.add_argument("--flows", dest="node_flows", type=Path, action="append", default=[],
                      metavar="PATH", help="a .py file or a directory of them with more "
                      "flows (repeatable)")
    node.add_argument("--advertise-url", dest="node_url", default=None, metavar="URL",
                      help="the URL the hub and other nodes reach this node at "
                      "(default http(s)://LISTEN:PORT)")
    node.add_argument("--tls", dest="node_tls", choices=("auto", "on"), default="auto",
                      help="auto: HTTPS whenever --listen is not loopback (default); on: on "
                      "loopback too")
    node.add_argument("--tls-cert", dest="node_tls_cert", type=Path, metavar="PEM",
                      help="serve this certificate instead of a self-signed one")
    node.add_argument("--tls-key", dest="node_tls_key", type=Path, metavar="PEM",
                      help="the key of --tls-cert")
    runner = agent.add_argument_group("runner only")
    runner.add_argument("--labels", default="", metavar="A,B",
                        help="labels jobs can ask for (comma-separated)")
    task_cli.add_parser(sub)
    runner_cli.add_parser(sub)
    tls_cli.add_parser(sub)
    return parser
