"""``controlroom task ...``: audio tasks from a terminal, with progress and meters.

Talks to a hub over HTTP like any client. The hub's address and operator token come from
``--hub``/``--token``, else from the local hub's data dir (``hub.url``, ``admin.token``),
so on the hub's own machine no flag is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.media_upload import upload_local_files
from app.tls_cli import pin_argument
from backend.audio import NullSink, open_sink, parse_task_spec, task_spec_schema, write_test_media
from backend.client import ClientError, HubClient, trust_for
from backend.protocol import frames
from backend.tls import Trust, made_by_hub
from ui.tasks.farm_parts import farm_of, part_lines, skipped_line


def add_parser(sub: Any) -> None:
    task = sub.add_parser("task", help="reserve, play, render and release audio tasks")
    task.add_argument("--hub", metavar="URL", help="hub base URL (default: the local hub's)")
    task.add_argument("--token", help="operator token (default: the local hub's admin.token)")
    task.add_argument("--pin", type=pin_argument, metavar="SHA256",
                      help="the hub certificate's fingerprint (default: the local hub's "
                      "certificate, trusted as the file it is)")
    task.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                      help="the local hub's data dir, to find hub.url and admin.token")
    verbs = task.add_subparsers(dest="verb", metavar="VERB", required=True)
    reserve = verbs.add_parser("reserve", help="reserve a task from a spec file; wait for ready")
    reserve.add_argument("spec", type=Path, help="a task spec, JSON (resources/specs/*.json)")
    reserve.add_argument("--engine", help="the engine to use (default: the least busy)")
    reserve.add_argument(
        "--keep-paths", action="store_true",
        help="send file paths as they are (files in the engine's media_dir). By default "
        "each file source whose path names a file on this machine (a relative path is "
        "looked for next to the spec file, then in the current directory) is uploaded to "
        "the hub and sent by its SHA-256; paths not found here are sent as they are")
    verbs.add_parser("list", help="the tasks and their states")
    for name, text in (("status", "a task's state, renders and meters"),
                       ("stop", "stop playing"), ("release", "cancel the reservation")):
        verbs.add_parser(name, help=text).add_argument("id")
    play = verbs.add_parser("play", help="play through the sound card with live meters")
    play.add_argument("id")
    play.add_argument("--device", help="output device index or name (default: the system's)")
    play.add_argument("--seconds", type=float, default=None, help="stop after this long")
    render = verbs.add_parser("render", help="render offline to a WAV file (Ctrl-C cancels)")
    render.add_argument("id")
    render.add_argument("-o", "--output", type=Path, required=True, help="the WAV file to write")
    render.add_argument("--format", choices=("wav24", "float32"), default="wav24")
    render.add_argument("--farm", type=farm_runners, metavar="N|NAME,...",
                        help="split the render over runners and the engine: how many "
                        "runners (the first that can take a part), or which ones, by name; "
                        "the file is bit-identical to the engine's own render")
    verbs.add_parser("schema", help="print the task spec's JSON Schema")
    media = verbs.add_parser("media", help="write the example specs' test audio into DIR "
                             "(point the engine's media_dir at it)")
    media.add_argument("dir", type=Path)


def run(args: argparse.Namespace, default_dir: Path) -> int:
    if args.verb == "schema":
        print(json.dumps(task_spec_schema(), indent=2, sort_keys=True))
        return 0
    if args.verb == "media":
        for path in write_test_media(args.dir):
            print(path)
        return 0
    try:
        url, token, trust = _connection(args, default_dir)
    except ValueError as exc:
        print(f"controlroom task: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_connected(args, url, token, trust))
    except ClientError as exc:
        print(f"controlroom task: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"controlroom task: cannot reach the hub at {url}: {exc}", file=sys.stderr)
        return 1


async def _connected(args: argparse.Namespace, url: str, token: str,
                     trust: Trust | None) -> int:
    """Run the verb with a client that trusts the hub by its pin (or the local file)."""
    if trust is None:
        trust = await trust_for(url, args.pin or "")
    return await _run(args, HubClient(url, token, trust=trust))


def _connection(args: argparse.Namespace, default_dir: Path
                ) -> tuple[str, str, Trust | None]:
    """The hub's URL and token, and its certificate when it is the local hub's (None: to
    be discovered by ``--pin``)."""
    data_dir: Path = args.data_dir or default_dir
    trust = None
    made = made_by_hub(data_dir)
    if args.hub is None and args.pin is None and made is not None:
        trust = Trust((made,))
    url = args.hub
    if url is None:
        try:
            url = (data_dir / "hub.url").read_text().strip()
        except OSError:
            raise ValueError(f"no --hub given and no hub running from {data_dir} "
                             "(its hub.url is missing)") from None
    token = args.token
    if token is None:
        try:
            token = (data_dir / "admin.token").read_text().strip()
        except OSError:
            raise ValueError(f"no --token given and cannot read {data_dir / 'admin.token'}"
                             ) from None
    return url, token, trust


async def _run(args: argparse.Namespace, hub: HubClient) -> int:
    try:
        verb = args.verb
        if verb == "reserve":
            return await _reserve(hub, args.spec, args.engine, args.keep_paths)
        if verb == "list":
            for task in await hub.tasks():
                print(f"{task['id']}  {task['state']:<9}  engine {task['engine']}  "
                      f"{task.get('error') or ''}")
            return 0
        if verb == "status":
            print(json.dumps(await hub.task(args.id), indent=2))
            return 0
        if verb == "stop":
            print((await hub.stop(args.id))["state"])
            return 0
        if verb == "release":
            await hub.release(args.id)
            print(f"released {args.id}")
            return 0
        if verb == "render":
            return await _render(hub, args.id, args.output, args.format, args.farm)
        if verb == "play":
            device = int(args.device) if args.device and args.device.isdigit() else args.device
            return await _play(hub, args.id, device, args.seconds)
        raise AssertionError(verb)
    finally:
        await hub.aclose()


async def _reserve(hub: HubClient, path: Path, engine: str | None,
                   keep_paths: bool = False) -> int:
    try:
        spec = parse_task_spec(await asyncio.to_thread(path.read_text))
    except OSError as exc:
        print(f"controlroom task: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"controlroom task: {path} is not a valid spec:\n{exc}", file=sys.stderr)
        return 2
    if not keep_paths:
        try:
            spec = await upload_local_files(hub, spec, path.parent, bar=ProgressBar)
        except OSError as exc:
            print(f"controlroom task: cannot read {exc.filename}: {exc.strerror}; fix the "
                  "file, or pass --keep-paths to send the paths as they are",
                  file=sys.stderr)
            return 2
    body = spec.model_dump(mode="json")
    task = await hub.reserve(body, engine)
    print(f"reserved {task['id']} on {task['engine']}; waiting for "
          f"{', '.join(task['waiting_for'])} to accept", file=sys.stderr)
    try:
        ready = await hub.wait_task(task["id"], within_s=30)
    except ClientError as exc:
        print(f"controlroom task: {exc}", file=sys.stderr)
        return 1
    print(ready["id"])
    return 0


def farm_runners(text: str) -> int | list[str]:
    """``--farm``: a runner count, or runner names separated by commas."""
    if text.strip().isdigit():
        count = int(text)
        if count < 1:
            raise argparse.ArgumentTypeError("a farm needs at least 1 runner")
        return count
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give a runner count or runner names, e.g. r1,r2")
    return names


def farm_summary(render: dict[str, Any]) -> list[str]:
    """What each part of a farm render did, and which runners were skipped and why (the
    console's words for them, ``ui/tasks/farm_parts.py``)."""
    farm = farm_of(render)
    if farm is None:
        return []
    skipped = skipped_line(farm)
    return [f"part {line.part}: {line.who}, {line.chunks}: {line.status}"
            for line in part_lines(farm)] + ([skipped] if skipped else [])


async def _render(hub: HubClient, task_id: str, output: Path, fmt: str,
                  farm: int | list[str] | None = None) -> int:
    render_id = await hub.render(task_id, fmt,
                                 farm=None if farm is None else {"runners": farm})
    bar = ProgressBar(f"rendering {task_id}")
    loop = asyncio.get_running_loop()
    cancelled = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, cancelled.set)
    try:
        waiter = asyncio.ensure_future(hub.wait_render(task_id, render_id, on_progress=bar))
        stopper = asyncio.ensure_future(cancelled.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if cancelled.is_set():
            waiter.cancel()
            await hub.cancel_render(task_id, render_id)
            bar.done("cancelled; the partial file is deleted")
            return 130
        stopper.cancel()
        render = waiter.result()
    except ClientError as exc:
        bar.done(f"failed: {exc}")
        return 1
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    await hub.download(task_id, render_id, output)
    bar.done(f"done: {output} ({render['bytes'] / 1e6:.1f} MB)")
    for line in farm_summary(render):
        print(f"  {line}", file=sys.stderr)
    return 0


async def _play(hub: HubClient, task_id: str, device: int | str | None,
                seconds: float | None) -> int:
    task = await hub.task(task_id)
    rate = int(task["spec"]["sample_rate"])
    sink = await asyncio.to_thread(open_sink, rate, device)
    if isinstance(sink, NullSink):
        print(f"playing to a {sink.name}: nothing will be audible", file=sys.stderr)
    else:
        print(f"playing on {sink.name}", file=sys.stderr)
    blocks: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=16)
    writer = threading.Thread(target=_drain, args=(blocks, sink), daemon=True)
    writer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    deadline = time.monotonic() + seconds if seconds else None
    outcome = 0
    try:
        async with hub.task_stream(task_id) as stream:
            await hub.play(task_id)
            while not stop.is_set():
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(stream.recv(), left)
                except TimeoutError:
                    state = (await hub.task(task_id))["state"]
                    if state != "playing":
                        print(f"\nplay ended: the task is {state}", file=sys.stderr)
                        break
                    continue
                if item is None:
                    print(f"\nthe hub closed the stream: {stream.closed_because}",
                          file=sys.stderr)
                    outcome = 1
                    break
                if isinstance(item, bytes):
                    header, payload = frames.unpack(item)
                    block = frames.block_from(payload, str(header["dtype"]), int(header["ch"]))
                    try:
                        blocks.put_nowait(block)
                    except queue.Full:
                        pass  # the sink is behind: skip rather than drift
                else:
                    message = json.loads(item)
                    if message["type"] == "meters":
                        _print_meters(message)
                    elif message["type"] == "play_failed":
                        print(f"\nplay failed: {message['reason']}", file=sys.stderr)
                        outcome = 1
                        break
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        blocks.put(None)
        if (await hub.task(task_id))["state"] == "playing":
            await hub.stop(task_id)
        await asyncio.to_thread(writer.join, 5)
        sink.close()
    print("", file=sys.stderr)
    return outcome


def _drain(blocks: queue.Queue[np.ndarray | None], sink: Any) -> None:
    while (block := blocks.get()) is not None:
        sink.write(block.astype(np.float32, copy=False))


def _print_meters(message: dict[str, Any]) -> None:
    width = max(10, min(40, (shutil.get_terminal_size().columns - 40) // 2))
    parts = []
    for name, channel in zip("LR", message["channels"], strict=False):
        peak = max(-60.0, float(channel["peak_dbfs"]))
        filled = int((peak + 60) / 60 * width)
        clip = "!" if channel.get("clips") else " "
        parts.append(f"{name} {'#' * filled:<{width}} {peak:6.1f}{clip}")
    sys.stderr.write(f"\r{message['position_s']:7.2f} s  " + "  ".join(parts))
    sys.stderr.flush()


class ProgressBar:
    """A one-line progress bar with time left, on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()

    def __call__(self, fraction: float) -> None:
        width = 30
        filled = int(fraction * width)
        elapsed = time.monotonic() - self.started
        left = elapsed / fraction - elapsed if fraction > 0.001 else float("nan")
        eta = f"{left:5.1f} s left" if left == left else "        "
        sys.stderr.write(f"\r{self.label} [{'=' * filled:<{width}}] {fraction * 100:5.1f}% {eta}")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        sys.stderr.write(f"\r{self.label}: {text}" + " " * 30 + "\n")
        sys.stderr.flush()
