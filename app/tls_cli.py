"""``controlroom tls ...``: the hub's certificate from its machine, and an agent's pin.

``show`` prints what agents pin (the current certificate's fingerprint) and the next one
the hub announced, straight from the data dir, so it works with the hub stopped. ``repin``
is the way back for an agent that was offline while its hub switched certificates: the
operator checks the new fingerprint on the hub's machine and sets it here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from backend.agents import credentials
from backend.tls import Identity, parse_pin


def pin_argument(text: str) -> str:
    try:
        return parse_pin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: Any) -> None:
    tls = sub.add_parser("tls", help="the hub's certificate fingerprint; re-pin an agent")
    actions = tls.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the certificate a hub serves and the next one "
                              "it announced (read from its data dir)")
    show.add_argument("--data-dir", type=Path, default=None,
                      help="the hub's data dir (default: the user data dir)")
    repin = actions.add_parser("repin", help="trust a hub's new certificate by its "
                               "fingerprint (an agent that missed a rotation)")
    repin.add_argument("--data-dir", type=Path, required=True,
                       help="the agent's data dir (where its credentials.json is)")
    repin.add_argument("pin", type=pin_argument,
                       help="sha256:… as `controlroom tls show` prints it on the hub's machine")


def run(args: argparse.Namespace, default_hub_dir: Path) -> int:
    if args.tls_command == "show":
        return _show(args.data_dir or default_hub_dir)
    try:
        updated = credentials.repin(args.data_dir, args.pin)
    except FileNotFoundError as exc:
        print(f"controlroom tls repin: {exc}", file=sys.stderr)
        return 2
    print(f"{updated.kind} {updated.name} now trusts {updated.hub} by {updated.pin}; "
          "restart the agent (it checks the certificate before it sends anything)")
    return 0


def _show(data_dir: Path) -> int:
    tls = data_dir / "tls"
    current = tls / "server.crt"
    if not current.exists():
        print(f"controlroom tls show: no certificate in {tls}: this hub has only served plain "
              "HTTP on loopback (start it with --tls on, or --host beyond loopback, and it "
              "makes one). A hub started with --tls-cert serves that file instead: "
              "openssl x509 -noout -fingerprint -sha256 -in FILE", file=sys.stderr)
        return 1
    print(f"serving: {Identity.load(current, None).fingerprint}")
    upcoming = tls / "next.crt"
    if upcoming.exists():
        print(f"next:    {Identity.load(upcoming, None).fingerprint} (announced; served "
              "from the hub's next start)")
    return 0
