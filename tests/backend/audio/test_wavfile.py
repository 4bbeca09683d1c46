"""The render's WAV writer: the bytes libsndfile wrote, faster; RF64; sizes fixed on close."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from backend.audio.wavfile import WavWriter, header, pcm24


def signal(frames: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(5)
    data = rng.uniform(-1.2, 1.2, (frames, 2))  # overs, to check the clipping
    data[:4] = [[1.0, -1.0], [0.5 / 2**23, 1.5 / 2**23], [-2.5 / 2**23, 0.0],
                [(2**23 - 0.5) / 2**23, -(2**23 + 0.5) / 2**23]]  # ties and edges
    return data


def write(path: Path, data: np.ndarray, fmt: str, **kwargs: object) -> None:
    with WavWriter(path, 48000, 2, fmt, **kwargs) as out:  # type: ignore[arg-type]
        for start in range(0, len(data), 777):  # odd block sizes, a short last block
            out.write(data[start:start + 777].copy())


def test_wav24_is_byte_for_byte_what_libsndfile_writes(tmp_path: Path) -> None:
    data = signal()
    write(tmp_path / "ours.wav", data, "wav24", expected_frames=len(data))
    samples = pcm24(data.copy()).reshape(-1, 2)
    soundfile.write(tmp_path / "theirs.wav", samples * 256, 48000, subtype="PCM_24")
    assert (tmp_path / "ours.wav").read_bytes() == (tmp_path / "theirs.wav").read_bytes()


def test_pcm24_rounds_to_nearest_even_and_clips_to_full_scale() -> None:
    got = pcm24(signal()[:4].copy()).reshape(-1, 2)
    assert got.tolist() == [[2**23 - 1, -(2**23)], [0, 2], [-2, 0], [2**23 - 1, -(2**23)]]


def test_float32_keeps_overs_and_has_no_peak_chunk(tmp_path: Path) -> None:
    data = signal()
    write(tmp_path / "f.wav", data, "float32")
    raw = (tmp_path / "f.wav").read_bytes()
    assert b"PEAK" not in raw and raw[20:22] == b"\x03\x00"  # WAVE_FORMAT_IEEE_FLOAT
    back, rate = soundfile.read(tmp_path / "f.wav", dtype="float32")
    assert rate == 48000 and soundfile.info(str(tmp_path / "f.wav")).subtype == "FLOAT"
    np.testing.assert_array_equal(back, data.astype(np.float32))
    assert np.abs(back).max() > 1.0


@pytest.mark.parametrize("fmt", ["wav24", "float32"])
def test_rf64_reads_back(tmp_path: Path, fmt: str) -> None:
    data = signal(3000)
    write(tmp_path / "big.wav", data, fmt, rf64=True)
    info = soundfile.info(str(tmp_path / "big.wav"))
    assert (info.format, info.frames, info.channels) == ("RF64", 3000, 2)
    back, _ = soundfile.read(tmp_path / "big.wav")
    expected = pcm24(data.copy()) / 2**23 if fmt == "wav24" else data.astype(np.float32)
    np.testing.assert_array_equal(back.reshape(-1), expected.reshape(-1))


def test_the_header_is_rewritten_with_the_frames_written(tmp_path: Path) -> None:
    write(tmp_path / "short.wav", signal(1000), "wav24", expected_frames=48000)
    assert soundfile.info(str(tmp_path / "short.wav")).frames == 1000
    assert (tmp_path / "short.wav").stat().st_size == 44 + 1000 * 6


def test_a_wav_too_large_for_riff_must_be_rf64() -> None:
    with pytest.raises(ValueError, match="use RF64"):
        header("wav24", 48000, 2, 2**32 // 6)
    assert header("wav24", 48000, 2, 2**32 // 6, rf64=True).startswith(b"RF64")


def test_a_block_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "x.wav", 48000, 2, "wav24") as out, \
            pytest.raises(ValueError, match=r"shape \(frames, 2\)"):
        out.write(np.zeros(10))
    with pytest.raises(ValueError, match="unknown WAV format"):
        WavWriter(tmp_path / "y.wav", 48000, 2, "mp3")  # type: ignore[arg-type]
