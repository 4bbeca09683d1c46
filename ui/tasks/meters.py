"""Meters and playback of a task's stream: peak/RMS bars in dBFS, peak hold, clip lights,
a scrolling level history, and the audio played on the chosen output device.

The stream comes from the bridge (``subscribe_stream``: binary audio frames and JSON
meters, as WebSocket subscribers get them). A coroutine drains it: the newest meters
reading is kept for the painter, and audio blocks go to a :class:`Playback` worker thread
that writes them to a sounddevice stream, or to the audio core's null sink (which keeps
time) when there is no device. Painting runs on a 30 Hz timer and reads only the newest
reading, so a burst of messages never queues paints, and nothing here blocks the GUI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSettings, Qt, QTimer
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from backend.audio import Device, Sink, open_sink, output_devices
from backend.client import ClientError
from backend.protocol import frames
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner

log = logging.getLogger(__name__)

FLOOR_DB = -60.0
CEILING_DB = 3.0
PAINT_HZ = 30
HISTORY_S = 10.0
CHANNELS = ("L", "R")
NULL_DEVICE = -2  # the combo's "no device" entry
#: QSettings key of the chosen output, by NAME: a device's index changes between starts.
DEVICE_KEY = "Audio/output_device"
#: What :data:`DEVICE_KEY` holds for the null sink ("" is the system default).
NULL_SINK_NAME = "<null sink>"
_NAME_ROLE = Qt.ItemDataRole.UserRole + 1


class Playback(QObject):
    """Plays audio blocks in a worker thread; the sink is opened there, never on the GUI."""

    #: The sink's name once opened ("null sink (no audio device: ...)" when there is none).
    opened = QtSignal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=32)
        self._thread: threading.Thread | None = None
        self.device: int | None = None
        self.sink_name = ""
        self.blocks_played = 0

    def start(self, sample_rate: int) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(sample_rate, self.device),
                                        name="playback", daemon=True)
        self._thread.start()

    def feed(self, block: np.ndarray) -> None:
        """Hand a block over; a full queue drops it (the device fell behind)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(block)

    def stop(self) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            while True:  # make room for the sentinel
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._queue.put_nowait(None)
        self._thread = None

    def _run(self, sample_rate: int, device: int | None) -> None:
        sink: Sink
        if device == NULL_DEVICE:
            from backend.audio import NullSink

            sink = NullSink(sample_rate, "no output device" if not output_devices()
                            else "chosen in the console")
        else:
            sink = open_sink(sample_rate, device)
        self.sink_name = sink.name
        self.opened.emit(sink.name)  # queued to the GUI thread
        try:
            while True:
                block = self._queue.get()
                if block is None:
                    return
                sink.write(block)
                self.blocks_played += 1
        except Exception:
            log.exception("playback stopped")
        finally:
            sink.close()


class MetersPanel(QWidget):
    """Device picker, per-channel bars and the level history of the followed task."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        #: Where the chosen output device is remembered (the user's QSettings by default).
        self.settings = settings
        self.bridge = bridge
        self.commands = actions
        self.task_id: str | None = None
        self.latest: dict[str, Any] | None = None
        self.readings = 0
        self.paints = 0
        self.audio_blocks = 0
        self.painted_peaks: list[float] = [FLOOR_DB, FLOOR_DB]
        self._history: deque[tuple[float, float, float]] = deque(maxlen=PAINT_HZ * 12)
        self._clip_base: list[float] = [0.0, 0.0]
        self._follower: asyncio.Task[None] | None = None
        self.playback = Playback(self)
        self.playback.opened.connect(self._on_opened)

        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Where the console plays the task's stream")
        self.device_combo.setMinimumWidth(220)
        self.device_combo.addItem("System default output", None)
        self.device_combo.currentIndexChanged.connect(self._on_device)
        self.device_combo.activated.connect(self._remember_device)  # the operator's choice
        self.sink_label = QLabel("Output: not playing")
        self.sink_label.setObjectName("sinkLabel")
        self.sink_label.setWordWrap(True)
        self.sink_label.setToolTip("The output the stream is actually played on")
        device_row = QHBoxLayout()
        device_row.addWidget(QLabel("Output device:"))
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.sink_label, 1)

        pg.setConfigOptions(antialias=False)
        self.bars = pg.PlotWidget()
        self.bars.setObjectName("meterBars")
        self.bars.setMinimumSize(200, 130)
        self.bars.setBackground("#1e1e1e")
        self.bars.setMouseEnabled(False, False)
        self.bars.hideButtons()
        self.bars.setYRange(FLOOR_DB, CEILING_DB, padding=0)
        self.bars.setXRange(-0.6, 1.6, padding=0)
        self.bars.setLabel("left", "dBFS")
        axis = self.bars.getAxis("bottom")
        axis.setTicks([[(0, "L"), (1, "R")]])
        self.bars.showGrid(y=True, alpha=0.25)
        self.bars.setToolTip("Per channel: peak (bright), RMS (dark), peak hold (white line); "
                             "0 dBFS is full scale")
        self.peak_item = pg.BarGraphItem(x=[0, 1], height=[0, 0], width=0.6, y0=FLOOR_DB,
                                         brush="#43a047")
        self.rms_item = pg.BarGraphItem(x=[0, 1], height=[0, 0], width=0.36, y0=FLOOR_DB,
                                        brush="#1b5e20")
        self.hold_item = pg.ScatterPlotItem(x=[0, 1], y=[FLOOR_DB, FLOOR_DB], symbol="_",
                                            size=34, pen=pg.mkPen("w", width=2),
                                            brush=pg.mkBrush("w"))
        self.bars.addItem(self.peak_item)
        self.bars.addItem(self.rms_item)
        self.bars.addItem(self.hold_item)
        self.bars.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#e53935",
                                                                         style=Qt.PenStyle.DashLine)))

        self.history = pg.PlotWidget()
        self.history.setObjectName("meterHistory")
        self.history.setMinimumSize(240, 130)
        self.history.setBackground("#1e1e1e")
        self.history.setMouseEnabled(False, False)
        self.history.hideButtons()
        self.history.setYRange(FLOOR_DB, CEILING_DB, padding=0)
        self.history.setXRange(-HISTORY_S, 0, padding=0)
        self.history.setLabel("bottom", "seconds ago")
        self.history.showGrid(x=True, y=True, alpha=0.25)
        self.history.addLegend(offset=(8, 8))
        self.history.setToolTip("Peak level of each channel over the last 10 s")
        self.curves = [self.history.plot(pen=pg.mkPen(c, width=1.5), name=f"{n} peak")
                       for c, n in (("#66bb6a", "L"), ("#42a5f5", "R"))]

        self.clip_lights = [QLabel(f"CLIP {c}") for c in CHANNELS]
        for light in self.clip_lights:
            light.setAlignment(Qt.AlignmentFlag.AlignCenter)
            light.setMinimumWidth(64)
            light.setToolTip("Lights when a sample went over full scale since the last reset")
        self._light(False, 0)
        self._light(False, 1)
        self.position_label = QLabel("")
        self.readout = QLabel("")
        self.readout.setObjectName("meterReadout")
        lights = QHBoxLayout()
        lights.addWidget(QLabel("<b>Meters</b>"))
        lights.addWidget(self.position_label)
        lights.addStretch(1)
        lights.addWidget(self.readout)
        for light in self.clip_lights:
            lights.addWidget(light)

        plots = QHBoxLayout()
        plots.addWidget(self.bars, 2)
        plots.addWidget(self.history, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(device_row)
        layout.addLayout(lights)
        layout.addLayout(plots, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / PAINT_HZ))
        self.timer.timeout.connect(self.paint)
        self._devices_loaded = False

    # -- following a task -------------------------------------------------------------

    def follow(self, task_id: str | None) -> None:
        """Show (and play) this task's stream from now on; None stops following."""
        if task_id == self.task_id and (task_id is None or self._follower is not None):
            return
        self._stop_following()
        self.task_id = task_id
        self.latest = None
        self._history.clear()
        self._clip_base = [0.0, 0.0]
        if task_id is None:
            self.timer.stop()
            return
        if not self._devices_loaded:
            self._devices_loaded = True
            self.commands.run("List audio devices", asyncio.to_thread(output_devices),
                             on_done=self._on_devices)
        try:
            stream = self.bridge.subscribe_stream(task_id)
        except ClientError:
            self.task_id = None
            return
        self._follower = asyncio.get_running_loop().create_task(
            self._drain(task_id, stream), name=f"meters-{task_id}")
        self.timer.start()

    def set_task_state(self, state: str | None) -> None:
        if state != "playing":
            if self.playback._thread is not None:
                self.playback.stop()
                self.sink_label.setText(f"Output: {self.playback.sink_name or 'stopped'} "
                                        "(stopped)")

    def close_stream(self) -> None:
        self.follow(None)
        self.playback.stop()

    def _stop_following(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        self.playback.stop()

    async def _drain(self, task_id: str, stream: asyncio.Queue[bytes | str | None]) -> None:
        try:
            while True:
                item = await stream.get()
                if item is None:
                    return
                if isinstance(item, str):
                    message = json.loads(item)
                    if message.get("type") == "meters":
                        self.latest = message
                        self.readings += 1
                        self.received_at = time.monotonic()
                    continue
                header, payload = frames.unpack(item)
                if header.get("k") != "audio":
                    continue
                channels = int(header.get("ch", 2))
                block = frames.block_from(payload, "float32", channels)
                self.audio_blocks += 1
                if self.playback._thread is None:
                    self.playback.start(int(header.get("rate", 48000)))
                self.playback.feed(block)
        finally:
            self.bridge.unsubscribe_stream(task_id, stream)

    # -- painting (30 Hz) -------------------------------------------------------------

    def paint(self) -> None:
        reading = self.latest
        now = time.monotonic()
        if reading is not None:
            channels = reading.get("channels", [])[:2]
            peaks = [_clamp(c.get("peak_dbfs")) for c in channels]
            rms = [_clamp(c.get("rms_dbfs")) for c in channels]
            holds = [_clamp(c.get("peak_hold_dbfs")) for c in channels]
            while len(peaks) < 2:
                peaks.append(FLOOR_DB)
                rms.append(FLOOR_DB)
                holds.append(FLOOR_DB)
            self.peak_item.setOpts(height=[p - FLOOR_DB for p in peaks])
            self.rms_item.setOpts(height=[r - FLOOR_DB for r in rms])
            self.hold_item.setData(x=[0, 1], y=holds)
            self.painted_peaks = peaks
            for i, channel in enumerate(channels):
                clips = float(channel.get("clips") or 0)
                self._light(clips > self._clip_base[i], i)
            self.position_label.setText(f"at {float(reading.get('position_s') or 0):.1f} s")
            self.readout.setText("  ".join(f"{n} {p:5.1f} / {r:5.1f} dBFS"
                                           for n, p, r in zip(CHANNELS, peaks, rms, strict=True)))
            self._history.append((now, peaks[0], peaks[1]))
        if self._history:
            t = np.fromiter((h[0] - now for h in self._history), float)
            for i, curve in enumerate(self.curves):
                curve.setData(t, np.fromiter((h[i + 1] for h in self._history), float))
        self.paints += 1

    def reset_clips(self) -> None:
        if self.latest is not None:
            self._clip_base = [float(c.get("clips") or 0)
                               for c in self.latest.get("channels", [])[:2]]

    def mousePressEvent(self, event: Any) -> None:  # a click anywhere resets the lights
        self.reset_clips()
        super().mousePressEvent(event)

    def _light(self, on: bool, index: int) -> None:
        self.clip_lights[index].setStyleSheet(
            "background: #e53935; color: white; border-radius: 3px; padding: 2px;" if on
            else "background: #3a3a3a; color: #9e9e9e; border-radius: 3px; padding: 2px;")

    # -- devices ----------------------------------------------------------------------

    def _on_devices(self, devices: list[Device]) -> None:
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        if devices:
            self.device_combo.addItem("System default output", None)
            self.device_combo.setItemData(0, "", _NAME_ROLE)
            for device in devices:
                self.device_combo.addItem(f"{device.name} ({device.channels} ch)", device.index)
                self.device_combo.setItemData(self.device_combo.count() - 1, device.name,
                                              _NAME_ROLE)
        self.device_combo.addItem("Null sink (no sound)", NULL_DEVICE)
        self.device_combo.setItemData(self.device_combo.count() - 1, NULL_SINK_NAME,
                                      _NAME_ROLE)
        remembered = self.remembered_device()
        found = self.device_combo.findData(remembered, _NAME_ROLE) if remembered else -1
        self.device_combo.setCurrentIndex(max(found, 0))
        self.device_combo.blockSignals(False)
        if not devices:
            self.sink_label.setText("No audio output device found: the stream is played "
                                    "into the null sink (meters still move)")
        elif remembered and found < 0:
            self.sink_label.setText(f"The remembered output “{remembered}” is not connected: "
                                    "playing on the system default output")
        self._on_device(self.device_combo.currentIndex())

    def remembered_device(self) -> str:
        """The output chosen last time, by name ("" for the system default)."""
        value = self._settings().value(DEVICE_KEY, "")
        return str(value) if value else ""

    def _remember_device(self, index: int) -> None:
        name = self.device_combo.itemData(index, _NAME_ROLE)
        settings = self._settings()
        settings.setValue(DEVICE_KEY, name if isinstance(name, str) else "")
        settings.sync()

    def _settings(self) -> QSettings:
        if self.settings is None:
            self.settings = QSettings()
        return self.settings

    def _on_device(self, index: int) -> None:
        data = self.device_combo.itemData(index)
        self.playback.device = data if isinstance(data, int) else None

    def _on_opened(self, name: str) -> None:
        if name.startswith("null sink"):
            self.sink_label.setText(f"Output: <b>{name}</b> — no sound is heard here")
        else:
            self.sink_label.setText(f"Output: <b>{name}</b>")


def _clamp(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return FLOOR_DB
    if number != number:  # NaN
        return FLOOR_DB
    return max(FLOOR_DB, min(CEILING_DB, number))
