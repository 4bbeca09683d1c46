"""Test audio the project makes itself, for the example specs (nothing is downloaded).

Three short, deterministic recordings of a studio session: a drum loop (48 kHz stereo
16-bit WAV), a bass line (44.1 kHz mono FLAC, so the engine has to resample it) and a pad
(48 kHz stereo float WAV). ``resources/specs/files.json`` mixes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SECONDS = 8.0
BPM = 120.0


def _drums(rate: int) -> np.ndarray:
    n = int(SECONDS * rate)
    out = np.zeros((n, 2))
    beat = int(rate * 60 / BPM)
    t = np.arange(int(0.4 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 9)
    rng = np.random.default_rng(1)
    hat = rng.standard_normal(int(0.05 * rate)) * np.exp(-np.arange(int(0.05 * rate)) / rate * 90)
    for k in range(0, n, beat):
        end = min(n, k + len(kick))
        out[k:end] += 0.7 * kick[: end - k, None]
        h = k + beat // 2
        if h < n:
            hend = min(n, h + len(hat))
            out[h:hend, 0] += 0.15 * hat[: hend - h]
            out[h:hend, 1] += 0.12 * hat[: hend - h]
    return out


def _bass(rate: int) -> np.ndarray:
    n = int(SECONDS * rate)
    t = np.arange(n) / rate
    notes = np.array([55.0, 55.0, 65.41, 73.42])  # A1 A1 C2 D2, one per bar
    bar = 4 * 60 / BPM
    freq = notes[(t // bar).astype(int) % len(notes)]
    phase = 2 * np.pi * np.cumsum(freq) / rate
    envelope = 0.6 + 0.4 * np.exp(-(t % (60 / BPM)) * 6)
    return 0.45 * envelope * (np.sin(phase) + 0.25 * np.sin(2 * phase))


def _pad(rate: int) -> np.ndarray:
    n = int(SECONDS * rate)
    t = np.arange(n) / rate
    chord = [220.0, 277.18, 329.63]  # A minor-ish, slightly detuned per side
    left = sum(np.sin(2 * np.pi * f * t) for f in chord)
    right = sum(np.sin(2 * np.pi * f * 1.003 * t) for f in chord)
    swell = np.minimum(1.0, t / 2.0)
    pad: np.ndarray = 0.12 * swell[:, None] * np.stack([left, right], axis=1)
    return pad


def write_test_media(directory: Path) -> list[Path]:
    """Write the three recordings into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = [
        (directory / "drums.wav", _drums(48000), 48000, "PCM_16"),
        (directory / "bass.flac", _bass(44100), 44100, "PCM_24"),
        (directory / "pad.wav", _pad(48000), 48000, "FLOAT"),
    ]
    for path, data, rate, subtype in files:
        sf.write(path, np.clip(data, -1.0, 1.0), rate, subtype=subtype)
    return [path for path, *_ in files]
