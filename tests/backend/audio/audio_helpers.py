"""Signal helpers shared by the audio tests (numpy references, independent of the core)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

WINDOW = {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}


def sine(freq: float, amplitude: float, frames: int, rate: int = 48000,
         right: float | None = None) -> npt.NDArray[np.float64]:
    """A stereo sine block; the right channel at ``right`` times the left if given."""
    n = np.arange(frames)
    mono = amplitude * np.sin(2 * np.pi * freq * n / rate)
    return np.stack([mono, mono * (1.0 if right is None else right)], axis=1)


def db(x: float) -> float:
    return 20 * math.log10(x)


def peak_db(x: npt.NDArray[np.float64]) -> float:
    return db(float(np.max(np.abs(x))))


def amplitude_at(x: npt.NDArray[np.float64], freq: float, rate: int = 48000) -> float:
    """Amplitude of the ``freq`` component of a 1-D signal holding whole periods of it."""
    n = np.arange(x.shape[0])
    phasor = np.exp(-2j * np.pi * freq * n / rate)
    return float(2 * abs(np.dot(x, phasor)) / x.shape[0])


def run_blocks(instance: Any, signal: npt.NDArray[np.float64], block: int) -> npt.NDArray[Any]:
    """Feed ``signal`` to ``instance.process`` in blocks of ``block`` frames."""
    out = [instance.process(signal[i:i + block]) for i in range(0, signal.shape[0], block)]
    return np.concatenate(out)


def spec_dict(tracks: list[dict[str, Any]], instances: dict[str, Any] | None = None,
              **extra: Any) -> dict[str, Any]:
    """A minimal valid task spec around ``tracks``."""
    out: dict[str, Any] = {"sample_rate": 48000, "tracks": tracks,
                           "instances": instances or {}, "window": WINDOW}
    out.update(extra)
    return out


def tone(freq: float = 1000.0, level: float = -6.0, duration: float = 1.0) -> dict[str, Any]:
    return {"type": "tone", "freq_hz": freq, "level_dbfs": level, "duration_s": duration}


#: A setting of each built-in model that works it hard (the compressor mostly compressing).
PARAMS: dict[str, dict[str, Any]] = {
    "gain": {"gain_db": -3.0},
    "eq": {"bands": [{"type": "peaking", "freq_hz": 900.0, "gain_db": 4.0, "q": 1.2}]},
    "compressor": {"threshold_db": -30.0, "ratio": 6.0, "attack_ms": 1.0, "release_ms": 30.0},
    "saturator": {"drive_db": 12.0, "mix": 0.8},
}


def model_spec(tmp_path: Path, model: str, block_size: int) -> dict[str, Any]:
    """Every track through ``model``: files at the task's rate and at others (resampled),
    a mono file, and generators (the files are written to ``tmp_path`` once)."""
    rng = np.random.default_rng(5)
    tracks: list[dict[str, Any]] = []
    instances: dict[str, Any] = {}
    for i, (rate, channels) in enumerate([(48000, 2), (44100, 2), (96000, 1), (48000, 1)]):
        path = tmp_path / f"in{i}.wav"
        if not path.exists():
            soundfile.write(path, rng.uniform(-0.5, 0.5, (rate * 2, channels)), rate,
                            subtype="PCM_24")
        iid = f"{model}{i}"
        tracks.append({"id": f"f{i}", "source": {"type": "file", "path": str(path)},
                       "chain": [iid], "pan": -0.8 + 0.5 * i, "gain_db": -4.0})
        instances[iid] = {"model": model, "params": PARAMS[model]}
    tracks.append({"id": "noise", "source": {"type": "noise", "level_dbfs": -14, "seed": 2,
                                             "duration_s": 1.7}, "pan": 0.2})
    tracks.append({"id": "tone", "source": tone(330, -9, 1.9), "chain": [f"{model}t"]})
    instances[f"{model}t"] = {"model": model, "params": PARAMS[model]}
    return spec_dict(tracks, instances, block_size=block_size)
