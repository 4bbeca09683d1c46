"""The graph: signal flow, the instance seam for fixed instances, live parameter changes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from backend.audio import (
    Graph,
    InstanceError,
    InstanceSpec,
    ParamError,
    TaskSpec,
    create_instance,
)
from backend.audio.levels import db_to_gain
from tests.backend.audio.audio_helpers import peak_db, spec_dict, tone


def drain(graph: Graph) -> npt.NDArray[np.float64]:
    blocks = []
    while (block := graph.next_block()) is not None:
        blocks.append(block)
    return np.concatenate(blocks)


def chained_spec(**extra: Any) -> TaskSpec:
    return TaskSpec.model_validate(spec_dict(
        [{"id": "a", "source": tone(440, -12, 0.5), "pan": -0.3, "chain": ["eq", "comp"]},
         {"id": "b", "source": {"type": "noise", "level_dbfs": -18, "seed": 1,
                                "duration_s": 0.5}, "chain": ["sat"], "gain_db": -2},
         {"id": "c", "source": tone(3000, -20, 0.25), "pan": 0.7}],
        {"eq": {"model": "eq", "params": {"bands": [{"freq_hz": 440, "gain_db": 6}]}},
         "comp": {"model": "compressor", "params": {"threshold_db": -30},
                  "location": {"driver": "rack-a"}},
         "sat": {"model": "saturator", "params": {"drive_db": 12}}},
        block_size=777, **extra))


def test_duration_defaults_to_the_longest_source_and_the_last_block_is_short() -> None:
    with Graph(chained_spec()) as graph:
        assert graph.total_frames == 24000 and graph.duration_s == 0.5
        sizes = []
        while (block := graph.next_block()) is not None:
            sizes.append(block.shape[0])
        assert sizes[:-1] == [777] * 30 and sizes[-1] == 24000 - 30 * 777
        assert graph.position_frames == 24000


def test_an_explicit_duration_pads_with_silence_or_cuts() -> None:
    with Graph(chained_spec(duration_s=1.0)) as graph:
        mix = drain(graph)
    assert mix.shape == (48000, 2)
    assert np.max(np.abs(mix[30000:])) < 1e-3  # only the filters' tails after the sources end


def test_mono_is_panned_stereo_is_balanced_and_master_gain_applies(tmp_path: Path) -> None:
    stereo = np.stack([np.full(4800, 0.5), np.full(4800, 0.25)], axis=1)
    soundfile.write(tmp_path / "st.wav", stereo, 48000, subtype="DOUBLE")
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "st", "source": {"type": "file", "path": str(tmp_path / "st.wav")},
          "pan": 0.5}], mix={"master_gain_db": -6.0}))
    with Graph(spec) as graph:
        mix = drain(graph)
    master = db_to_gain(-6.0)
    assert mix[0, 0] == pytest.approx(0.5 * np.cos(np.pi / 4) * master)  # far side attenuated
    assert mix[0, 1] == pytest.approx(0.25 * master)  # near side untouched


def test_chain_order_is_the_listed_order() -> None:
    def mix_for(chain: list[str]) -> npt.NDArray[np.float64]:
        spec = TaskSpec.model_validate(spec_dict(
            [{"id": "t", "source": tone(100, -1, 0.1), "chain": chain}],
            {"up": {"model": "gain", "params": {"gain_db": 12}},
             "sat": {"model": "saturator", "params": {"drive_db": 0}}}))
        with Graph(spec) as graph:
            return drain(graph)

    assert peak_db(mix_for(["up", "sat"])) < peak_db(mix_for(["sat", "up"])) - 6


class Proxy:
    """What the engine's driver proxy looks like to the graph: the same five members. This
    one runs the model "remotely" in its own object and records what the graph sends."""

    def __init__(self, iid: str, spec: InstanceSpec, calls: list[tuple[str, int]]) -> None:
        self._remote = create_instance(spec.model, 48000, spec.params)
        self._iid, self._calls = iid, calls

    @property
    def params(self) -> dict[str, Any]:
        return self._remote.params

    def process(self, block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        self._calls.append((self._iid, block.shape[0]))
        wire = block.astype("<f8").tobytes()  # what a binary frame would carry
        back = self._remote.process(np.frombuffer(wire, dtype="<f8").reshape(-1, 2))
        return np.frombuffer(back.astype("<f8").tobytes(), dtype="<f8").reshape(-1, 2)

    def set_params(self, params: Mapping[str, Any]) -> None:
        self._calls.append((self._iid, -1))
        self._remote.set_params(params)

    def report(self) -> dict[str, float]:
        return self._remote.report()

    def reset(self) -> None:
        self._remote.reset()


def test_a_proxied_fixed_instance_gives_bit_identical_output() -> None:
    calls: list[tuple[str, int]] = []

    def factory(iid: str, inst: InstanceSpec) -> Proxy | None:
        return Proxy(iid, inst, calls) if inst.location != "dynamic" else None

    spec = chained_spec()
    with Graph(spec) as local, Graph(spec, instance_factory=factory) as remote:
        assert isinstance(remote.instances["comp"], Proxy)
        assert not isinstance(remote.instances["eq"], Proxy)
        a, b = drain(local), drain(remote)
        assert np.array_equal(a, b)
        assert local.reports() == remote.reports()
    assert calls == [("comp", 777)] * 30 + [("comp", 690)]  # one block at a time, in order


def test_parameter_changes_apply_at_the_next_block_boundary() -> None:
    calls: list[tuple[str, int]] = []
    spec = chained_spec()
    with Graph(spec, instance_factory=lambda i, s: Proxy(i, s, calls)) as graph:
        graph.next_block()
        graph.set_instance_params("comp", {"ratio": 10})
        assert graph.instance_params("comp")["ratio"] == 10.0
        assert ("comp", -1) not in calls  # queued, not applied from this thread
        graph.next_block()
        assert calls.index(("comp", -1)) < len(calls) - 3  # before the block's processing
        assert graph.instances["comp"].params["ratio"] == 10.0


def test_bad_live_changes_are_refused_at_once() -> None:
    with Graph(chained_spec()) as graph:
        with pytest.raises(ParamError, match=r"no instance 'nope'.*eq, comp, sat"):
            graph.set_instance_params("nope", {})
        with pytest.raises(ParamError, match=r"saturator: mix: .*less than or equal to 1"):
            graph.set_instance_params("sat", {"mix": 2})
        with pytest.raises(ParamError, match="unknown parameter 'drive'"):
            graph.set_instance_params("sat", {"drive": 2})
        assert graph.instance_params("sat")["drive_db"] == 12.0


def test_live_changes_are_deterministic_by_block() -> None:
    def run() -> npt.NDArray[np.float64]:
        with Graph(chained_spec()) as graph:
            out = []
            for k in range(31):
                if k == 10:
                    graph.set_instance_params("eq", {"bands": [{"freq_hz": 880, "gain_db": -6}]})
                out.append(graph.next_block())
            return np.concatenate(out)  # type: ignore[arg-type]

    assert np.array_equal(run(), run())


def test_a_failing_instance_is_named() -> None:
    class Broken(Proxy):
        def process(self, block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
            raise ConnectionError("driver rack-a went away")

    class Short(Proxy):
        def process(self, block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
            return np.zeros((block.shape[0] - 1, 2))

    for kind, pattern in ((Broken, "'comp' failed: ConnectionError: driver rack-a went away"),
                          (Short, "'comp' failed: returned 776 frames for a block of 777")):
        def factory(iid: str, inst: InstanceSpec, k: type[Proxy] = kind) -> Proxy | None:
            return k(iid, inst, []) if iid == "comp" else None

        with Graph(chained_spec(), instance_factory=factory) as graph, \
                pytest.raises(InstanceError, match=pattern) as info:
            graph.next_block()
        assert info.value.instance_id == "comp"


def test_meters_and_clip_counts_on_the_bus() -> None:
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "t", "source": tone(1000, 0.0, 0.1), "gain_db": 6, "pan": 1.0}]))
    with Graph(spec) as graph:
        drain(graph)
        reading = graph.meters()
    assert reading.peak_dbfs[1] == pytest.approx(6.0, abs=0.01)
    assert reading.clips[0] == 0 and reading.clips[1] > 1000


def test_seek_restarts_instances_from_silence() -> None:
    with Graph(chained_spec()) as graph:
        first = drain(graph)
        graph.seek(0)
        assert graph.meters().peak_dbfs == (-120.0, -120.0)
        assert np.array_equal(drain(graph), first)
        with pytest.raises(ValueError, match="outside the task"):
            graph.seek(10**9)


def test_a_factory_returning_something_else_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="returned str for 'comp'"):
        Graph(chained_spec(), instance_factory=lambda i, s: "proxy" if i == "comp" else None)  # type: ignore[arg-type,return-value]


def test_a_factory_that_cannot_reach_its_driver_is_named() -> None:
    def factory(iid: str, inst: InstanceSpec) -> Proxy | None:
        if inst.location != "dynamic":
            raise ConnectionRefusedError("rack-a is not connected")
        return None

    with pytest.raises(InstanceError, match="'comp' failed: ConnectionRefusedError: rack-a"):
        Graph(chained_spec(), instance_factory=factory)


class SlowRemote(Proxy):
    """A proxy that takes ``delay_s`` per block, like a round trip through a driver, and
    marks itself remote so the graph runs it on a helper thread."""

    remote = True

    def __init__(self, iid: str, spec: InstanceSpec, calls: list[tuple[str, int]],
                 delay_s: float) -> None:
        super().__init__(iid, spec, calls)
        self.delay_s = delay_s
        self.started: list[float] = []

    def process(self, block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        import time

        self.started.append(time.monotonic())
        time.sleep(self.delay_s)
        return super().process(block)


def test_read_ahead_starts_the_next_round_trip_early_and_keeps_every_sample() -> None:
    """With ``read_ahead`` the trip for block k+1 runs while the caller still holds block k,
    so a consumer as slow as the trip no longer waits for it; the samples do not change."""
    import time

    calls: list[tuple[str, int]] = []
    made: list[SlowRemote] = []

    def factory(iid: str, inst: InstanceSpec) -> SlowRemote | None:
        if inst.location == "dynamic":
            return None
        made.append(SlowRemote(iid, inst, calls, delay_s=0.01))
        return made[-1]

    spec = chained_spec()
    with Graph(spec) as local:
        expected = drain(local)
    with Graph(spec, instance_factory=factory) as graph:
        graph.read_ahead(graph.total_frames)
        blocks, handed_out = [], []
        while (block := graph.next_block()) is not None:
            handed_out.append(time.monotonic())
            blocks.append(block)
            time.sleep(0.01)  # the consumer's own work on this block (a render's write)
    assert np.array_equal(np.concatenate(blocks), expected)
    starts = made[0].started
    assert len(starts) == len(blocks)
    # every trip after the first started before the block before it was handed out
    early = sum(1 for k in range(1, len(starts)) if starts[k] < handed_out[k - 1] + 0.005)
    assert early == len(starts) - 1


def test_read_ahead_refuses_a_block_size_it_did_not_prepare() -> None:
    spec = chained_spec()

    def factory(iid: str, inst: InstanceSpec) -> SlowRemote | None:
        return None if inst.location == "dynamic" else SlowRemote(iid, inst, [], 0.0)

    with Graph(spec, instance_factory=factory) as graph:
        graph.read_ahead(graph.total_frames)
        graph.next_block()
        with pytest.raises(RuntimeError, match="read-ahead computed 777 frames"):
            graph.next_block(100)
        graph.seek(0)  # a seek drops what was read ahead and starts over
        assert graph.next_block(100) is not None


def test_parameter_changes_wait_for_a_round_trip_in_flight() -> None:
    """A change never touches an instance while a helper thread runs it."""
    calls: list[tuple[str, int]] = []

    def factory(iid: str, inst: InstanceSpec) -> SlowRemote | None:
        return None if inst.location == "dynamic" else SlowRemote(iid, inst, calls, 0.005)

    with Graph(chained_spec(), instance_factory=factory) as graph:
        graph.read_ahead(graph.total_frames)
        graph.next_block()
        graph.set_instance_params("eq", {"bands": [{"freq_hz": 880, "gain_db": 3}]})
        assert graph.next_block() is not None
        assert graph.instance_params("eq")["bands"][0]["freq_hz"] == 880


def test_a_source_that_cannot_be_opened_is_a_clean_error(tmp_path: Path) -> None:
    """The graph closes what it opened and raises the reason, not an error of its own."""
    from backend.audio import AudioError

    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "a", "source": tone(440, -12, 0.5)},
         {"id": "b", "source": {"type": "file", "path": str(tmp_path / "missing.wav")}}]))
    with pytest.raises(AudioError, match=r"missing\.wav"):
        Graph(spec)
