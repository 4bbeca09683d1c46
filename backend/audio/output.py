"""Where played audio goes: a sound device through sounddevice, or a null sink.

``sounddevice`` is imported lazily: without Debian's ``libportaudio2`` the import raises
``OSError`` (the Linux wheels do not bundle PortAudio), and with it but no device, opening
a stream raises ``PortAudioError``. Either way :func:`open_sink` falls back to
:class:`NullSink`, which keeps time against the absolute clock (block *k* is "played" when
its last frame is due), and says why, so the operator sees plainly that nothing is
audible.

Sinks are written from one worker thread with blocking writes, never from the event loop
or the GUI thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


class Sink(Protocol):
    name: str

    def write(self, block: npt.NDArray[np.float32]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Discards audio at the pace a device would play it."""

    def __init__(self, sample_rate: int, reason: str = "") -> None:
        self.sample_rate = sample_rate
        self.name = "null sink" + (f" ({reason})" if reason else "")
        self.frames = 0
        self._start: float | None = None

    def write(self, block: npt.NDArray[np.float32]) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self.frames += len(block)
        due = self._start + self.frames / self.sample_rate
        if due > now:
            time.sleep(due - now)

    def close(self) -> None:
        """Nothing to release."""


class DeviceSink:
    def __init__(self, stream: Any, name: str) -> None:
        self._stream = stream
        self.name = name

    def write(self, block: npt.NDArray[np.float32]) -> None:
        self._stream.write(np.ascontiguousarray(block, dtype=np.float32))

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    channels: int
    default_rate: float


def output_devices() -> list[Device]:
    """Devices that can play stereo; empty without PortAudio or without devices."""
    try:
        import sounddevice as sd

        found = sd.query_devices()
    except Exception:  # OSError without PortAudio, PortAudioError without a server
        return []
    return [Device(i, str(d["name"]), int(d["max_output_channels"]),
                   float(d["default_samplerate"]))
            for i, d in enumerate(found) if int(d["max_output_channels"]) >= 2]


def open_sink(sample_rate: int, device: int | str | None = None,
              blocksize: int = 1024) -> Sink:
    """A device sink if one can be opened, else a :class:`NullSink` that says why."""
    try:
        import sounddevice as sd
    except OSError as exc:
        return NullSink(sample_rate, f"no PortAudio library: {exc}")
    try:
        stream = sd.OutputStream(samplerate=sample_rate, channels=2, dtype="float32",
                                 device=device, blocksize=blocksize, latency="low")
        stream.start()
    except Exception as exc:  # PortAudioError: no device, busy device, bad rate
        return NullSink(sample_rate, f"no audio device: {exc}")
    info = sd.query_devices(stream.device)
    return DeviceSink(stream, str(info["name"]))
