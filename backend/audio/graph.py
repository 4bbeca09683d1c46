"""The signal graph of one task: sources -> per-track chains -> fader and pan -> bus.

Per block, in this fixed order (the order never depends on timing or threads):

1. parameter changes queued by ``set_instance_params`` are applied, in arrival order;
2. each track, in spec order: the source gives ``n`` frames (mono is copied to both
   channels if the track has a chain); the block goes through the track's instances in
   chain order, one ``process`` call each; the result is scaled by the track's fader and
   pan (mono source: constant-power pan law) or balance (stereo source) and added to the
   bus (``pan.py``);
3. the bus is scaled by the master gain, metered (``meters.py``) and returned.

Instances are reached only through the ``Instance`` protocol, one block at a time, so the
engine may substitute a proxy for a fixed instance (``instance_factory``) and get the same
samples as running the model locally. The same graph serves real-time play (the engine
paces ``next_block`` by its block clock) and offline render (``render.py`` calls it as fast
as it can). The graph is single-threaded: ``next_block`` and ``seek`` belong to one thread;
``set_instance_params``, ``meters``, ``reports`` and the position may be used from others.

Speed (see ``docs/performance.md``): each track's block is copied into one row of a
``(tracks, 2 * frames)`` matrix (a chain-less track straight from the file's native
samples, the int-to-float conversion being the copy), and each group of up to
:data:`GROUP` tracks is mixed by one ``einsum("ti,ti->i")`` against a constant matrix of
the same shape holding, per track and interleaved channel, fader x pan or balance x the
file's full-scale factor x master gain, into one partial bus; the partials are then summed
in group order. The result is the interleaved bus, already ``(frames, 2)``. That is one C
loop per group instead of a multiply and an add per track (about half the time).

The groups are what other processes take (``processes=`` with a ``workers=`` factory,
:class:`~backend.audio.workers.TrackWorkers` in practice; this module only knows the
:class:`Workers` protocol, so the process machinery depends on the graph and not the
other way round): a worker mixes its groups itself and hands back one partial row per
group rather than a row per track, and as the summation is the same whichever process
computed a group, a split render is bit-identical to one process. During a render
(``read_ahead``) the workers mix a block ahead, into the other of two slots of partial
buses, while this process finishes the current one.

A BLAS matrix product was as fast as einsum on an idle machine but took
5-8 ms instead of 0.12 ms per block while other processes kept the shared cores busy
(OpenBLAS threads spin); einsum uses no BLAS and no threads, and sums in a fixed order, so
the mix is deterministic. The fold of the full-scale factors is exact: they are powers of
two.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from backend.audio.blocks import FloatBlock, as_block, next_frames, tiled, to_stereo
from backend.audio.errors import BlockError, InstanceError, ParamError
from backend.audio.instance import Instance
from backend.audio.lanes import Pending, RemoteLanes, sent
from backend.audio.levels import db_to_gain
from backend.audio.meters import Meter, MeterReading
from backend.audio.models import check_params, create_instance
from backend.audio.pan import balance_gains, pan_gains
from backend.audio.sources import Source, open_source
from backend.audio.spec import InstanceSpec, TaskSpec

#: At most this many tracks per mix group (the unit of work handed to another process, and
#: of the summation), and at least this many groups when there are tracks enough. Both
#: depend on the track count only, never on the number of processes, so that the sum is
#: the same however the groups are spread. Groups of 4 balance uneven chains better than
#: groups of 8 and measured as fast (32 tracks: 207x gain-only, 53x with an EQ each).
GROUP = 4
MIN_GROUPS = 4

#: The summation tree's second level: consecutive groups are summed in chunks of this many
#: (in group order), then the chunk sums in chunk order. A chunk is what one part of a farm
#: render computes and sends back (one float64 stereo stream), so the tree is the same
#: whether one process or many renders: floating-point sums depend on their order, and
#: this order depends on the track count only. Up to 32 tracks are one chunk (the sum is
#: then what it always was); 128 tracks are 4 chunks, so a farm moves at most 4 streams.
CHUNK_GROUPS = 8

def mix_layout(tracks: int) -> tuple[list[list[int]], list[list[int]]]:
    """The summation tree for ``tracks`` tracks: the groups (track indexes each) and the
    chunks (group indexes each). It depends on the track count alone, so the hub can plan
    a farm render from a spec without building its graph."""
    size = max(1, min(GROUP, -(-tracks // MIN_GROUPS)))
    groups = [list(range(i, min(i + size, tracks))) for i in range(0, tracks, size)]
    chunks = [list(range(i, min(i + CHUNK_GROUPS, len(groups))))
              for i in range(0, len(groups), CHUNK_GROUPS)]
    return groups, chunks


#: What this process's own share of a split render starts at, in the units of the track
#: weights in ``_split`` (a track's read is 1): summing the partials, metering, converting
#: and writing cost it about as much as reading and mixing eight chain-less tracks
#: (measured: 0.07 s against 0.008 s per track per minute of audio). With the workers a
#: block ahead (``workers.py``), leaving it fewer groups made a gain-and-pan render 8 %
#: faster (weights 4 to 12 measured alike); without them, it had made it slower.
OUTPUT_WEIGHT = 8

#: An offline render reads, mixes and writes blocks of about this many frames, whatever the
#: spec's block size (``offline_block``): per-block Python work (a source read and a
#: chain call per track, a mix call per group, the meters, a write) is then paid eight
#: times less often at the default block size. 32 tracks with gain and pan: 0.53 s at
#: 1024 frames, 0.42 s at 8192 (``docs/performance.md``).
OFFLINE_FRAMES = 8192


def offline_block(spec: TaskSpec) -> int:
    """The working block of an offline render of ``spec``: a whole number of its blocks
    (so block-dependent models still see the spec's block boundaries), near
    :data:`OFFLINE_FRAMES`."""
    return spec.block_size * max(1, round(OFFLINE_FRAMES / spec.block_size))


InstanceFactory = Callable[[str, InstanceSpec], Instance | None]
"""Called once per declared instance: return a stand-in (e.g. a proxy to an instance
driver for a fixed instance) or None to run the built-in model in the graph."""


class Workers(Protocol):
    """The other processes of a split graph, as the graph drives them.

    They mix their groups into ``slots``, partial buses of shape ``(slots, groups,
    2 * block_size)`` that this process reads as well (shared memory), one slot per block
    on its way. The graph must let go of every view of ``slots`` before :meth:`close`.
    """

    slots: np.ndarray
    reports: dict[str, dict[str, float]]

    def wait_ready(self) -> None: ...
    def hosts(self, instance_id: str) -> bool: ...
    @property
    def on_their_way(self) -> list[int]: ...
    @property
    def current_slot(self) -> int: ...
    def send_block(self, n: int) -> None: ...
    def finish(self) -> int: ...
    def drain(self) -> None: ...
    def set_params(self, instance_id: str, params: dict[str, Any]) -> None: ...
    def seek(self, frame: int) -> None: ...
    def close(self) -> None: ...


WorkerFactory = Callable[
    [TaskSpec, Path | None, tuple[int, ...], list[list[int]], list[list[int]]], Workers]
"""Starts a split graph's other processes: ``(spec, media_dir, partials_shape, rows,
groups)``, one process per entry of ``groups`` (mix groups) computing those ``rows``
(track indexes); :class:`~backend.audio.workers.TrackWorkers` is one. The graph takes it
as an argument so that it never imports the process machinery, which imports the graph."""


@dataclass
class _Track:
    id: str
    source: Source
    mono: bool
    chain: list[tuple[str, Instance]]
    left: float  # fader x pan/balance, per channel
    right: float
    raw_scale: float  # the source's factor to full scale when read raw (1.0 with a chain)
    remote: bool = False  # an instance in its chain waits on another process


class Graph:
    """A task's sources, instances and bus, producing the mix one block at a time."""

    def __init__(self, spec: TaskSpec, instance_factory: InstanceFactory | None = None, *,
                 media_dir: Path | None = None, processes: int = 1,
                 workers: WorkerFactory | None = None,
                 partials: np.ndarray | None = None,
                 block_frames: int | None = None) -> None:
        if processes > 1 and workers is None:
            raise ValueError("a graph split over processes needs a worker factory "
                             "(workers=TrackWorkers)")
        if block_frames is not None and (block_frames <= 0
                                         or block_frames % spec.block_size):
            raise ValueError(f"block_frames must be a multiple of the spec's block size "
                             f"({spec.block_size}), got {block_frames}")
        self.spec = spec
        self.sample_rate: int = spec.sample_rate
        self.instances: dict[str, Instance] = {}
        self._params: dict[str, dict[str, Any]] = {}
        for iid, inst_spec in spec.instances.items():
            made = None
            if instance_factory is not None:
                try:
                    made = instance_factory(iid, inst_spec)
                except Exception as exc:
                    raise InstanceError(iid, f"{type(exc).__name__}: {exc}") from exc
            if made is None:
                made = create_instance(inst_spec.model, self.sample_rate, inst_spec.params)
            elif not isinstance(made, Instance):
                raise TypeError(f"instance_factory returned {type(made).__name__} for {iid!r}, "
                                "which lacks the Instance members (params, process, "
                                "set_params, report, reset)")
            self.instances[iid] = made
            self._params[iid] = inst_spec.params.model_dump(mode="json")
        # A chain through a driver keeps the spec's blocks: the driver's instance sees
        # whole blocks, so larger ones would change what a block-dependent model computes.
        used = {iid for track in spec.tracks for iid in track.chain}
        if any(getattr(self.instances[iid], "remote", False) for iid in used):
            block_frames = None
        self.block_size = block_frames or spec.block_size
        self._tracks: list[_Track] = []
        self._workers: Workers | None = None
        self._lanes: RemoteLanes | None = None
        count = len(spec.tracks)
        self._groups, self.chunks = mix_layout(count)
        shape = (len(self._groups), 2 * self.block_size)
        self._partials = np.zeros(shape) if partials is None else partials
        self._slots = self._partials[np.newaxis]  # more than one when split (workers.py)
        self._until: int | None = None
        self._mine: list[int] = []  # the groups this process mixes, and their rows
        self._rows: list[int] = []
        self.take_groups(list(range(len(self._groups))))
        try:
            if processes > 1 and len(self._groups) > 1:
                # First, so that the workers build their graphs while this one opens its
                # sources (measured: 10 ms of a render's start).
                assert workers is not None
                self._split(processes, media_dir, workers)
            for track in spec.tracks:
                source = open_source(track.source, self.sample_rate, self.block_size, media_dir)
                self._tracks.append(self._track(track.id, source, track.gain_db, track.pan,
                                                track.chain))
            if self._workers is not None:
                self._workers.wait_ready()
        except BaseException:
            self.close()
            raise
        if spec.duration_s is not None:
            self.total_frames = round(spec.duration_s * self.sample_rate)
        else:
            self.total_frames = max(t.source.frames for t in self._tracks)
        self._master = db_to_gain(spec.mix.master_gain_db)
        self._meter = Meter(self.sample_rate)
        # One row per track, its block interleaved (L R L R ...); the gains likewise, master
        # gain included, so each group's mix is one sum of products over its rows.
        self._stack = np.zeros((count, 2 * self.block_size))
        self._gains = np.stack([
            tiled(t.left * t.raw_scale * self._master, t.right * t.raw_scale * self._master,
                  self.block_size).reshape(-1)
            for t in self._tracks])
        self._lock = threading.Lock()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        remote = [row for row, track in enumerate(self._tracks) if track.remote]
        self._lanes = RemoteLanes(
            remote, lambda row, n: self._run_chain(self._tracks[row], n),
            {row: functools.partial(self._send_chain, row) for row in remote
             if _pipelined_stage(self._tracks[row]) is not None})
        self.position_frames = 0

    def _track(self, track_id: str, source: Source, gain_db: float, pan: float,
               chain: tuple[str, ...]) -> _Track:
        mono = source.channels == 1
        left, right = pan_gains(pan) if mono else balance_gains(pan)
        fader = db_to_gain(gain_db)
        left, right = left * fader, right * fader
        scale = 1.0 if chain else source.raw_scale
        instances = [(iid, self.instances[iid]) for iid in chain]
        remote = any(getattr(instance, "remote", False) for _, instance in instances)
        return _Track(track_id, source, mono, instances, left, right, scale, remote)

    # --- running -------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        return self.total_frames / self.sample_rate

    def next_block(self, max_frames: int | None = None) -> FloatBlock | None:
        """The next bus block (new array, at most ``block_size`` frames), None at the end."""
        n = next_frames(self.block_size, self.position_frames, self.total_frames, max_frames)
        if n <= 0:
            return None
        self._mix(n)
        mixed = self.sum_chunks(self.chunk_sums(range(len(self.chunks)), n))
        bus: FloatBlock = mixed.reshape(n, 2)
        self._meter.update(bus)
        self.position_frames += n
        return bus

    def _mix(self, n: int) -> None:
        """Every group's partial bus of the next ``n`` frames (of the groups this process
        takes part in: all, some with workers, or a farm part's)."""
        if self._pending:
            self._apply_pending()
        stack = self._stack[:, :2 * n]
        if self._workers is not None:
            self._ask_workers(n)  # other processes fill their rows meanwhile
        lanes = self._lanes
        assert lanes is not None
        waiting = lanes.take(n)  # started early, or now: they overlap the local rows
        self.fill_rows(n)
        for row, pending in waiting:
            np.copyto(stack[row].reshape(n, 2), pending.result())
        lanes.top_up(self.position_frames + n, self.block_size)
        self.mix_groups(n)
        if self._workers is not None:
            self._workers.finish()

    def chunk_sums(self, chunks: range | list[int], n: int) -> np.ndarray:
        """The partial bus of each of ``chunks`` (interleaved, ``2 * n`` values each): the
        sum of its groups' partials in group order. One process computes every chunk;
        a farm part computes its own and sends them (``farm.py``)."""
        parts = self._partials[:, :2 * n]
        out = np.empty((len(chunks), 2 * n))
        for row, chunk in enumerate(chunks):
            groups = self.chunks[chunk]
            np.add.reduce(parts[groups[0]:groups[-1] + 1], axis=0, out=out[row])
        return out

    @staticmethod
    def sum_chunks(sums: np.ndarray) -> np.ndarray:
        """The bus from every chunk's partial, in chunk order: the tree's last level."""
        total: np.ndarray = sums[0] if sums.shape[0] == 1 else np.add.reduce(sums, axis=0)
        return total

    def next_chunks(self, chunks: list[int], max_frames: int | None = None) -> np.ndarray | None:
        """The next block of ``chunks``' partial buses alone (a farm part's output, shape
        ``(len(chunks), 2 * n)``), None at the end. The graph computes only those chunks'
        tracks (:meth:`take_chunks`)."""
        n = next_frames(self.block_size, self.position_frames, self.total_frames, max_frames)
        if n <= 0:
            return None
        self._mix(n)
        sums = self.chunk_sums(chunks, n)
        self.position_frames += n
        return sums

    def take_chunks(self, chunks: list[int]) -> None:
        """Compute only these chunks' groups (a farm part)."""
        unknown = [c for c in chunks if not 0 <= c < len(self.chunks)]
        if unknown:
            raise ValueError(f"no chunk {unknown[0]} in this task (it has {len(self.chunks)})")
        if self._workers is not None:
            raise ValueError("a farm part renders in one process (processes=1)")
        self.take_groups([g for c in chunks for g in self.chunks[c]])
        # Only its own chains through a driver run (the engine's part: the hub keeps every
        # such chunk with the engine, where the driver's link is).
        assert self._lanes is not None
        mine = set(self._rows)
        self._lanes.rows = [row for row, track in enumerate(self._tracks)
                            if track.remote and row in mine]

    def _ask_workers(self, n: int) -> None:
        """Make sure the workers are mixing this block, and during a render the next one
        too (``workers.py``): they then never wait for this process's output side."""
        workers = self._workers
        assert workers is not None
        ahead = workers.on_their_way
        if ahead and ahead[0] != n:
            workers.drain()
            raise RuntimeError(f"the track workers mixed {ahead[0]} frames ahead, but {n} "
                               "were asked for; ask for blocks up to the frame given to "
                               "read_ahead()")
        if not ahead:
            workers.send_block(n)
        following = self.position_frames + n
        if self._until is not None and following < self._until and len(
                workers.on_their_way) < len(self._slots):
            workers.send_block(min(self.block_size, self._until - following))
        self._partials = self._slots[workers.current_slot]

    def mix_into(self, partials: np.ndarray) -> None:
        """Mix this process's groups into these partial buses (one slot of the shared ones)."""
        self._partials = partials

    def take_groups(self, groups: list[int]) -> None:
        """Compute and mix only these groups (the others are another process's)."""
        self._mine = sorted(groups)
        self._rows = [row for group in self._mine for row in self._groups[group]]

    @property
    def rows(self) -> list[int]:
        """The tracks (by index) whose blocks this process computes."""
        return list(self._rows)

    def mix_groups(self, n: int) -> None:
        """Mix this process's groups of the filled rows into their partial buses."""
        for group in self._mine:
            rows = self._groups[group]
            first, last = rows[0], rows[-1] + 1
            np.einsum("ti,ti->i", self._stack[first:last, :2 * n],
                      self._gains[first:last, :2 * n], out=self._partials[group, :2 * n])

    def fill_rows(self, n: int) -> None:
        """Compute this process's rows of the next ``n`` frames, chains that wait on other
        processes excepted (``lanes.py``). A track worker calls it alone."""
        if self._pending:
            self._apply_pending()
        stack = self._stack
        for row in self._rows:
            track = self._tracks[row]
            if track.remote:
                continue
            frames = stack[row, :2 * n].reshape(n, 2)
            if track.chain:
                np.copyto(frames, self._run_chain(track, n))
                continue
            raw, _ = track.source.read_raw(n)
            if track.mono:
                np.copyto(frames[:, 0], raw[:, 0])
                np.copyto(frames[:, 1], raw[:, 0])
            else:
                np.copyto(frames, raw)

    def _split(self, processes: int, media_dir: Path | None, workers: WorkerFactory) -> None:
        """Hand whole groups of tracks to other processes, which write their partial buses
        into shared memory: the rows and partials are computed by the same code, and the
        partials summed in the same order, so the output is bit-identical to one process.
        Groups with a track that waits on a driver stay here (their proxies talk through
        this process)."""
        # A track costs its read plus about four reads per instance; one that waits on a
        # driver costs this process that much and its round trips' messaging too, which
        # runs here (measured: weighing it as 1 left the workers idle a quarter of the time).
        chains = [[self.instances[iid] for iid in track.chain] for track in self.spec.tracks]
        waits = [sum(1 for inst in chain if getattr(inst, "remote", False)) for chain in chains]
        weights = [sum(1 + 4 * len(chains[row]) + 4 * waits[row] for row in rows)
                   for rows in self._groups]
        bins: list[list[int]] = [[] for _ in range(processes)]
        load = [OUTPUT_WEIGHT] + [0] * (processes - 1)
        here = [g for g, rows in enumerate(self._groups) if any(waits[row] for row in rows)]
        for group in here:
            bins[0].append(group)
            load[0] += weights[group]
        for group in sorted(set(range(len(self._groups))) - set(here),
                            key=lambda g: (-weights[g], g)):
            target = min(range(processes), key=lambda i: (load[i], i))
            bins[target].append(group)
            load[target] += weights[group]
        assigned = [sorted(b) for b in bins[1:] if b]
        if not assigned:
            return
        self.take_groups(bins[0])
        self._workers = workers(self.spec, media_dir, self._partials.shape,
                                [[row for g in groups for row in self._groups[g]]
                                 for groups in assigned], assigned)
        self._slots = self._workers.slots
        self._partials = self._slots[0]

    def read_ahead(self, until_frame: int) -> None:
        """Start the blocks of chains that wait on a driver early, up to ``until_frame``.

        For offline renders, whose caller asks for every block up to a known end; see
        ``lanes.py``. Measured through the real hub and driver, the engine waited 0.6-1.0 s
        per minute of audio for round trips without it. The samples are those of the
        block-by-block graph; a parameter change reaches those chains a few blocks later.
        :meth:`seek` turns it off.
        """
        assert self._lanes is not None
        self._until = min(until_frame, self.total_frames)
        self._lanes.read_ahead(self._until)

    def _send_chain(self, row: int, n: int) -> Pending:
        """Run a lane's stages up to its remote one and send the block; the stages after
        it run when the result is collected (in block order)."""
        track = self._tracks[row]
        index = _pipelined_stage(track)
        assert index is not None
        raw = track.source.read(n)
        block: FloatBlock = to_stereo(raw[:, 0]) if track.mono else raw
        block = self._through(track.chain[:index], block, n)
        iid, instance = track.chain[index]
        try:
            collect_remote = instance.submit(block)  # type: ignore[attr-defined]
        except InstanceError:
            raise
        except Exception as exc:
            raise InstanceError(iid, f"{type(exc).__name__}: {exc}") from exc

        def collect() -> FloatBlock:
            out = self._checked(iid, collect_remote, n)
            return self._through(track.chain[index + 1:], out, n)

        def settle() -> None:
            with contextlib.suppress(Exception):
                collect_remote()

        return sent(collect, settle)

    def _run_chain(self, track: _Track, n: int) -> FloatBlock:
        raw = track.source.read(n)
        block: FloatBlock = to_stereo(raw[:, 0]) if track.mono else raw
        return self._through(track.chain, block, n)

    def _through(self, stages: list[tuple[str, Instance]], block: FloatBlock,
                 n: int) -> FloatBlock:
        step = self.spec.block_size
        for iid, instance in stages:
            if n <= step or not getattr(instance, "block_dependent", False):
                block = self._checked(iid, functools.partial(instance.process, block), n)
                continue
            # Blocks larger than the spec's (an offline render): a model whose output
            # depends on where blocks start gets the spec's blocks, so the samples are
            # those of a render at the spec's block size, bit for bit.
            out = np.empty((n, 2))
            for start in range(0, n, step):
                m = min(step, n - start)
                out[start:start + m] = self._checked(
                    iid, functools.partial(instance.process, block[start:start + m]), m)
            block = out
        return block

    @staticmethod
    def _checked(iid: str, stage: Callable[[], Any], n: int) -> FloatBlock:
        """One stage's output, any failure or bad block named after the instance."""
        try:
            out = stage()
        except InstanceError:
            raise
        except Exception as exc:
            raise InstanceError(iid, f"{type(exc).__name__}: {exc}") from exc
        try:
            block = as_block(out)
        except BlockError as exc:
            raise InstanceError(iid, str(exc)) from None
        if block.shape[0] != n:
            raise InstanceError(iid, f"returned {block.shape[0]} frames for a block of {n}")
        return block

    def seek(self, frame: int) -> None:
        """Continue from ``frame``: sources seek, instances and meters start from silence."""
        if not 0 <= frame <= self.total_frames:
            raise ValueError(f"frame {frame} is outside the task (0..{self.total_frames})")
        if self._lanes is not None:
            self._lanes.read_ahead(None)
        self._until = None
        for track in self._tracks:
            track.source.seek(frame)
        for instance in self.instances.values():
            instance.reset()
        if self._workers is not None:
            self._workers.seek(frame)
        self._meter.reset()
        self.position_frames = frame

    # --- control and observation (any thread) ---------------------------------------------

    def set_instance_params(self, instance_id: str, params: Mapping[str, Any]) -> None:
        """Validate now (``ParamError``), apply at the start of the next block."""
        if instance_id not in self.instances:
            known = ", ".join(self.instances) or "none"
            raise ParamError(f"no instance {instance_id!r} in this task (instances: {known})")
        model = self.spec.instances[instance_id].model
        with self._lock:
            merged = {**self._params[instance_id], **dict(params)}
            self._params[instance_id] = check_params(model, merged)
            if self._workers is not None and self._workers.hosts(instance_id):
                self._workers.set_params(instance_id, dict(params))
            else:
                self._pending.append((instance_id, dict(params)))

    def _apply_pending(self) -> None:
        if self._lanes is not None:  # no instance may change while a chain runs it
            self._lanes.settle_threaded()
        with self._lock:
            pending, self._pending = self._pending, []
        for iid, params in pending:
            try:
                self.instances[iid].set_params(params)
            except InstanceError:
                raise
            except Exception as exc:
                raise InstanceError(iid, f"{type(exc).__name__}: {exc}") from exc

    def instance_params(self, instance_id: str) -> dict[str, Any]:
        """The parameters of an instance as they stand (including queued changes)."""
        with self._lock:
            return dict(self._params[instance_id])

    def meters(self) -> MeterReading:
        """The bus meters after the latest block."""
        return self._meter.reading()

    def reports(self) -> dict[str, dict[str, float]]:
        """Every instance's latest ``report()``, by instance id."""
        reports = {iid: instance.report() for iid, instance in self.instances.items()}
        if self._workers is not None:
            reports.update(self._workers.reports)
        return reports

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sources' files (and stop the track workers, if any)."""
        if self._workers is not None:
            self._partials = np.zeros(self._partials.shape)  # let go of the shared buffer
            self._slots = self._partials[np.newaxis]
            self._workers.close()
            self._workers = None
        if self._lanes is not None:
            self._lanes.close()
        for track in self._tracks:
            track.source.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _pipelined_stage(track: _Track) -> int | None:
    """The index of a chain's one remote stage, if it can take blocks ahead (``submit``)."""
    remote = [i for i, (_, inst) in enumerate(track.chain) if getattr(inst, "remote", False)]
    if len(remote) == 1 and callable(getattr(track.chain[remote[0]][1], "submit", None)):
        return remote[0]
    return None
