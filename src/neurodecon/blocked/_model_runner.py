"""A trained network block by block; what ``predict`` decides from the whole volume, once.

``neurodecon.learn.predict`` decides two things from the whole volume (each time point and
channel on its own): the percentile normalisation, and the physics-aware variant's RL_K
settings (the background, ``"auto"`` by default, and the flat start's level, the volume's mean).
Here they are made once per frame, on the whole frame (read whole when it fits, else in one
streaming pass: ``_summary``), and every block then runs predict's own pieces
(``network_input``, ``predict_normalized``) with them; RL_K runs as a :class:`ClassicalRunner`.

The halo of a block is what RL_K needs (the classical rule, ``default_halo`` of its PSF) plus
the network's tiled-inference context (``Tiling.context``: the tile halo and the cross-fade),
rounded up to the network's size multiple so that blocks start on its pooling grid.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._global import representative_crops
from ._plan import Block
from ._summary import FrameSummary, frame_summary
from ._tasks import ClassicalRunner, read_region, thread_cache

__all__ = ["ModelRunner", "decide_model", "NETWORK_BYTES_PER_VOXEL", "whole_predict_bytes"]

#: Memory of the network's activations per voxel of a tile read (with its halo). The default
#: 64×192×192 tile is about 1 GB on the CPU (``neurodecon.learn.predict``).
NETWORK_BYTES_PER_VOXEL = 256
#: rl-accel's factors of a frame too large to run whole are computed on this central crop.
ACCELERATION_CROP = (64, 256, 256)


@dataclass
class ModelRunner:
    """A network with its whole-volume decisions made: one frame's normalisation and RL_K."""

    model: Any  # a model directory (str: each process loads it) or a loaded Model
    low: float
    high: float
    tiles: Any  # neurodecon.learn.Tiling
    physics: ClassicalRunner | None = None
    device: str = "auto"
    precision: str = "auto"
    frames: dict[tuple[int, ...], ModelRunner] = field(default_factory=dict, repr=False)
    key: str = ""
    full_shape: tuple[int, ...] | None = None  # the volume's (Z, Y, X): tiles on its grid
    origin: tuple[int, ...] = (0, 0, 0)  # where the block's region starts in the volume

    @property
    def multiple(self) -> int:
        """Block cores and halos are multiples of the network's size multiple."""
        return int(self.tiles.multiple)

    def default_halo(self) -> tuple[int, int, int]:
        """Return RL_K's halo (the classical rule) plus the network's context, rounded up."""
        phys = self.physics.default_halo() if self.physics is not None else (0, 0, 0)
        m = self.multiple
        z, y, x = (int(math.ceil((h + self.tiles.context) / m)) * m for h in phys)
        return (z, y, x)

    def block_bytes(self, read_shape: tuple[int, ...]) -> int:
        """Predicted peak memory of one block: RL_K's deconvolver, the channels, one tile."""
        n = int(np.prod(read_shape))
        channels = 2 if self.physics is not None else 1
        phys = self.physics.block_bytes(read_shape) if self.physics is not None else 8 * n
        tile = np.prod([min(t + 2 * self.tiles.halo, r)
                        for t, r in zip(self.tiles.tile, read_shape, strict=True)])  # fmt: skip
        return int(phys + 4 * n * (channels + 4) + NETWORK_BYTES_PER_VOXEL * tile)

    def for_block(self, block: Block) -> ModelRunner:
        """Return the runner of one block: its frame's decisions, its region's origin."""
        frame = self.frames.get(tuple(block.index[:-3]), self)
        origin = tuple(r.start for r in block.read[-3:])
        return dataclasses.replace(frame, frames={}, origin=origin)

    def _net(self) -> Any:
        """Return this thread's network (loaded or copied once per thread) and its device."""
        from ..device import resolve_device
        from ..learn import load_model, place_network

        cache = thread_cache()
        k = ("network", self.key, self.device)
        if k not in cache:
            m = self.model
            net = load_model(m).net if isinstance(m, str) else copy.deepcopy(m.net)
            dev = resolve_device(self.device)
            cache[k] = (place_network(net, dev).eval(), dev)
        return cache[k]

    def __call__(self, vol: np.ndarray) -> np.ndarray:
        """Predict one region (float32, same shape) as ``predict`` does inside a volume."""
        from ..learn import Normalization, network_input, predict_normalized

        net, dev = self._net()
        norm = Normalization(self.low, self.high)
        rl = self.physics(vol) if self.physics is not None else None
        inp = network_input(vol, norm, rl)
        return predict_normalized(net, inp, norm, self.tiles, device=dev, precision=self.precision,
                                  origin=self.origin, full_shape=self.full_shape)  # fmt: skip


def _loaded(model: Any) -> Any:
    from ..learn import is_foreign_package, load_model

    if is_foreign_package(model):
        raise user_error(
            "a bioimage.io package made elsewhere cannot run in blocks (its own pipeline "
            "normalises whatever it is given, so blocks would disagree)",
            path=model,
            fix="run it on a volume that fits in memory (a .tif output), or use a NeuroDecon model",
        )
    return load_model(model)


def _model_key(model: Any) -> str:
    h = hashlib.sha1()
    for name, t in sorted(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().numpy().tobytes())
    if model.physics_psf is not None:
        h.update(np.ascontiguousarray(model.physics_psf, np.float32).tobytes())
    return h.hexdigest()


def decide_model(
    src: Any,
    shape: tuple[int, ...],
    model: Any,
    voxel_size_um: Any,
    *,
    device: str = "auto",
    precision: str = "auto",
    tile_shape: Any = None,
) -> tuple[ModelRunner, dict[str, Any]]:
    """Make predict's whole-volume decisions once per frame; return the runner and the record."""
    from ..learn import (
        check_levels,
        check_voxel_size,
        normalization_for,
        physics_kernel,
        physics_options,
        tiling,
    )

    m = _loaded(model)
    check_voxel_size(m, voxel_size_um)
    key = _model_key(m)
    ref: Any = str(m.path) if m.path is not None and Path(m.path).is_dir() else m
    tiles = tiling(m, tile_shape=tile_shape)
    kernel = physics_kernel(m.physics_psf, shape[-3:]) if m.physics else None
    frames: dict[tuple[int, ...], ModelRunner] = {}
    records = []
    auto_background = kernel is not None and isinstance(physics_options(m)["background"], str)
    how = "whole volume"
    for frame in np.ndindex(*shape[:-3]):
        summary = frame_summary(src, shape, tuple(frame), background_maps=auto_background)
        if not summary.exact:
            how = summary.describe()
        if not frames:  # one warning line, as predict checks its first volume
            sample = summary.volume
            check_levels(m, sample if sample is not None else representative_crops(src, shape))
            del sample
        norm = normalization_for(m, summary.values)
        physics, rec = _physics(m, summary, kernel, device)
        if physics is not None and physics.method == "rl-accel":
            where = _acceleration(physics, summary.volume, src, shape, tuple(frame))
            rec.update(physics_acceleration=list(physics.acceleration or ()),
                       physics_acceleration_from=where)  # fmt: skip
        del summary
        frames[tuple(frame)] = ModelRunner(ref, norm.low, norm.high, tiles, physics, device,
                                           precision, key=key, full_shape=shape[-3:])  # fmt: skip
        records.append({"frame": list(frame), "normalization": [norm.low, norm.high], **rec})
    runner = next(iter(frames.values()))
    runner.frames = frames
    params = {
        "model": str(m.path) if m.path is not None else "in memory",
        "arch": m.arch,
        "model_sha1": key[:12],
        "percentiles": list(m.predict_config["normalization"]["percentiles"]),
        "physics": (
            {
                "method": runner.physics.method,
                "iterations": runner.physics.iterations,
                "background_requested": m.physics.get("background", 0.0),
                "psf_shape": list(runner.physics.psf.shape),
            }
            if runner.physics is not None
            else None
        ),  # fmt: skip
        "frames": records,
        "tiling": {
            "tile": list(tiles.tile),
            "halo": tiles.halo,
            "blend": tiles.blend,
            "multiple": tiles.multiple,
        },  # fmt: skip
        "precision": precision,
        "global_decisions": how,
    }
    return runner, params


def _physics(
    m: Any, summary: FrameSummary, kernel: np.ndarray | None, device: str
) -> tuple[ClassicalRunner | None, dict[str, Any]]:
    """RL_K of one frame as a classical runner: background and flat level of the whole frame."""
    from ..learn import physics_options

    if kernel is None:
        return None, {}
    opts = physics_options(m)
    b = summary.background(opts["background"])
    level = summary.flat_level(b, opts["method"])
    runner = ClassicalRunner(kernel, opts["method"], opts["iterations"], b, flat_level=level,
                             device=device)  # fmt: skip
    return runner, {"physics_background": b, "physics_flat_level": level}


def _acceleration(
    runner: ClassicalRunner, whole: np.ndarray | None, src: Any, shape: Any, frame: Any
) -> str:
    """Set rl-accel's factors of RL_K (``runner.acceleration``) as predict computes them.

    ``α_k`` sums over the whole volume, so blocks replay the volume's to extrapolate alike. They
    are computed on the ``whole`` frame when given and its deconvolution fits half the memory
    available, else on its central crop of at most ``ACCELERATION_CROP`` voxels (approximate).
    Returns where they were computed.
    """
    from ..classical import Deconvolver, deconvolution_bytes
    from ..memory import available_bytes

    spatial = shape[-3:]
    need = deconvolution_bytes(spatial, runner.psf.shape, method=runner.method)
    if whole is not None and need <= 0.5 * (available_bytes() or 2 * need):
        data, where = whole, "whole volume"
    else:
        size = [min(c, n) for c, n in zip(ACCELERATION_CROP, spatial, strict=True)]
        start = [(n - c) // 2 for n, c in zip(spatial, size, strict=True)]
        index = (*frame, *(slice(a, a + c) for a, c in zip(start, size, strict=True)))
        data = read_region(src, index).reshape(size)
        where = f"central {'×'.join(map(str, size))} crop"
    dec = Deconvolver(runner.psf, data.shape, method=runner.method, device=runner.device)
    dec.acceleration = []
    dec(data, iterations=runner.iterations, background=runner.background,
        flat_level=runner.flat_level)  # fmt: skip
    runner.acceleration = tuple(float(a) for a in dec.acceleration)
    return where


def whole_predict_bytes(model: Any, spatial_shape: tuple[int, ...]) -> int:
    """Predicted peak memory of ``predict`` on a whole frame (to choose blocks automatically)."""
    from ..classical import deconvolution_bytes
    from ..learn import load_model, tiling

    m = load_model(model)
    n = int(np.prod(spatial_shape))
    phys = 0
    if m.physics:
        psf_shape = m.physics_psf.shape if m.physics_psf is not None else (32, 64, 64)
        phys = deconvolution_bytes(spatial_shape, psf_shape, method=m.physics["method"])
    t = tiling(m)
    tile = np.prod([min(a + 2 * t.halo, b) for a, b in zip(t.tile, spatial_shape, strict=True)])
    return int(phys + 4 * n * 8 + NETWORK_BYTES_PER_VOXEL * tile)
