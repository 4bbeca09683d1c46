"""Sources: generators exact at any block size, files streamed in chunks and resampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from backend.audio import SourceError
from backend.audio.sources import AudioFileSource, open_source
from backend.audio.spec import FileSource, NoiseSource, ToneSource
from tests.backend.audio.audio_helpers import amplitude_at


def read_all(source: object, total: int, block: int) -> np.ndarray:
    parts = [source.read(min(block, total - i)).copy()  # type: ignore[attr-defined]
             for i in range(0, total, block)]
    return np.concatenate(parts)


def test_tone_is_the_same_at_any_block_size_and_silent_after_its_end() -> None:
    spec = ToneSource(type="tone", freq_hz=997.0, level_dbfs=-6.0, duration_s=0.5)
    a = read_all(open_source(spec, 48000, 1024), 30000, 777)
    b = read_all(open_source(spec, 48000, 1024), 30000, 4096)
    assert np.array_equal(a, b)
    n = np.arange(24000)
    assert a[:24000, 0] == pytest.approx(10 ** (-6 / 20) * np.sin(2 * np.pi * 997 * n / 48000),
                                         abs=1e-12)
    assert not a[24000:].any()


def test_noise_is_seeded_block_size_independent_and_seekable() -> None:
    spec = NoiseSource(type="noise", level_dbfs=-20.0, seed=42, duration_s=1.0)
    a = read_all(open_source(spec, 48000, 1024), 48000, 777)
    b = read_all(open_source(spec, 48000, 1024), 48000, 1000)
    assert np.array_equal(a, b)
    rms = float(np.sqrt(np.mean(a**2)))
    assert 20 * np.log10(rms) == pytest.approx(-20.0, abs=0.1)
    assert np.max(np.abs(a)) <= 10 ** (-20 / 20) * np.sqrt(3)
    seeker = open_source(spec, 48000, 1024)
    seeker.seek(30000)
    assert np.array_equal(seeker.read(500), a[30000:30500])
    seeker.seek(100)
    assert np.array_equal(seeker.read(10), a[100:110])
    other = read_all(open_source(spec.model_copy(update={"seed": 43}), 48000, 1024), 48000, 777)
    assert not np.array_equal(a, other)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "DOUBLE"])
def test_native_reads_scale_to_exactly_what_soundfile_reads(tmp_path: Path,
                                                            subtype: str) -> None:
    path = tmp_path / f"{subtype}.wav"
    data = np.random.default_rng(1).uniform(-0.9, 0.9, (10000, 2))
    soundfile.write(path, data, 48000, subtype=subtype)
    expected, _ = soundfile.read(path, dtype="float64")
    source = AudioFileSource(path, 48000, chunk_frames=4096)
    got = read_all(source, 10000, 777)
    assert np.array_equal(got, expected)
    source.seek(1234)
    raw, scale = source.read_raw(100)
    assert scale == source.raw_scale
    assert np.array_equal(raw * scale, expected[1234:1334])


def test_files_are_read_in_chunks_never_whole(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.wav"
    frames = 48000 * 20
    soundfile.write(path, np.zeros((frames, 2)), 48000, subtype="PCM_16")
    requested: list[int] = []
    original = soundfile.SoundFile.read

    def spy(self: soundfile.SoundFile, frames: int = -1, *args: object,
            **kwargs: object) -> object:
        out = kwargs.get("out")
        requested.append(len(out) if out is not None else frames)  # type: ignore[arg-type]
        return original(self, frames, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(soundfile.SoundFile, "read", spy)
    source = open_source(FileSource(type="file", path=str(path)), 48000, 1024)
    read_all(source, frames, 1024)
    assert max(requested) <= 65536
    assert len(requested) >= frames // 65536


def test_a_file_at_another_rate_is_resampled_with_whole_signal_quality(tmp_path: Path) -> None:
    path = tmp_path / "441.wav"
    n_in = 44100 * 2
    t = np.arange(n_in) / 44100
    mono = 0.5 * np.sin(2 * np.pi * 1000 * t)
    soundfile.write(path, mono, 44100, subtype="FLOAT")
    source = AudioFileSource(path, 48000)
    assert source.resampled and source.channels == 1
    assert source.frames == -(-n_in * 160 // 147)
    streamed = read_all(source, source.frames + 500, 777)[:, 0]
    stored = soundfile.read(path, dtype="float64")[0]
    whole = resample_poly(stored, 160, 147)
    assert streamed.shape[0] == whole.shape[0] + 500
    assert np.max(np.abs(streamed[:whole.shape[0]] - whole)) < 1e-12
    assert not streamed[whole.shape[0]:].any()
    steady = streamed[48000:96000]  # one second: 1000 whole periods at 48 kHz
    assert 20 * np.log10(amplitude_at(steady, 1000) / 0.5) == pytest.approx(0.0, abs=0.01)


def test_downsampling_and_seeking_a_resampled_file(tmp_path: Path) -> None:
    path = tmp_path / "96k.wav"
    data = np.random.default_rng(5).uniform(-0.5, 0.5, (96000, 2))
    soundfile.write(path, data, 96000, subtype="DOUBLE")
    source = AudioFileSource(path, 48000)
    streamed = read_all(source, 48000, 1000)
    whole = resample_poly(data, 1, 2, axis=0)
    assert np.max(np.abs(streamed - whole)) < 1e-12
    source.seek(12345)
    assert np.max(np.abs(source.read(300) - whole[12345:12645])) < 1e-12


def test_a_looping_file_repeats(tmp_path: Path) -> None:
    path = tmp_path / "loop.wav"
    data = np.random.default_rng(2).uniform(-0.5, 0.5, (1000, 2))
    soundfile.write(path, data, 48000, subtype="DOUBLE")
    source = open_source(FileSource(type="file", path=str(path), loop=True), 48000, 64)
    assert source.frames == 1000  # one pass: the default task length
    got = read_all(source, 3500, 333)
    assert np.array_equal(got, np.concatenate([data, data, data, data[:500]]))
    source.seek(2100)
    assert np.array_equal(source.read(10), data[100:110])


def test_relative_paths_resolve_against_the_media_dir(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "m.wav", np.zeros(100), 48000)
    source = open_source(FileSource(type="file", path="m.wav"), 48000, 64, media_dir=tmp_path)
    assert source.channels == 1 and source.frames == 100


def test_unusable_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open audio file"):
        AudioFileSource(tmp_path / "missing.wav", 48000)
    soundfile.write(tmp_path / "surround.wav", np.zeros((10, 6)), 48000)
    with pytest.raises(SourceError, match="6 channels"):
        AudioFileSource(tmp_path / "surround.wav", 48000)
    soundfile.write(tmp_path / "odd.wav", np.zeros(10), 44101)
    with pytest.raises(SourceError, match="cannot resample 44101 Hz"):
        AudioFileSource(tmp_path / "odd.wav", 48000)
