"""Tiled inference with a halo and linear blending; any volume size; channels/time points looped."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..errors import user_error
from ..progress import ProgressFn, report
from ._bioimageio_foreign import is_foreign_package, predict_bioimageio
from ._limits import check_levels, check_voxel_size
from ._model import Model, load_model
from ._norm import Normalization, robust_range
from ._precision import place_network

__all__ = [
    "predict",
    "predict_with_spread",
    "predict_tiled",
    "augmentations",
    "DEFAULT_TILE",
    "Tiling",
    "tiling",
    "network_input",
    "predict_normalized",
    "normalization_for",
]

DEFAULT_TILE = (64, 192, 192)

log = logging.getLogger("neurodecon")


def _round_up(n: int, m: int) -> int:
    return -(-int(n) // m) * m


def predict(
    model: Model | str | Path,
    image: np.ndarray,
    *,
    voxel_size_um=None,
    tile_shape: tuple[int, int, int] | None = None,
    halo: int | None = None,
    blend: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    check: bool = True,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Deconvolve ``image`` (``(..., Z, Y, X)``) with a trained network; float32, same shape.

    :func:`predict_with_spread` also returns a per-voxel uncertainty (test-time augmentation).

    Parameters
    ----------
    model : Model or path
        From :func:`load_model`, a model directory, or a bioimage.io package (``.zip``): one
        made by :func:`export_bioimageio` loads as its model directory; one made elsewhere (a 3D
        one-channel restoration model) runs through :func:`predict_bioimageio`, with its own
        normalisation (tile, halo, blend, precision and check do not apply).
    image : (..., Z, Y, X) ndarray or Image
        One volume, or several (channels, time points) stacked in front; each is normalised on
        its own, with the model's recorded whole-volume normalisation.
    voxel_size_um : (z, y, x), optional
        The image's voxel size; a mismatch with the model's (> 10 % on an axis) logs a warning
        that names both and says what to do.
    tile_shape : (z, y, x), optional
        Core size of a tile in voxels (rounded up to the network's multiple); default
        ``(64, 192, 192)``, which bounds memory to roughly 1 GB on the CPU whatever the volume size.
    halo : int, optional
        Context read around every tile and discarded (default from the model, 16 voxels).
    blend : int, optional
        Width of the linear cross-fade between neighbouring tiles (default: the network multiple).
    precision : "auto" | "fp32" | "bf16" | "fp16"
        ``auto`` = fp16 autocast on CUDA, fp32 on the CPU.
    check : bool
        Measure the first volume's dark level and photons (``neurodecon.metrics.
        calibrate_noise`` on at most 2 × 10⁶ voxels) and warn in one line when they lie outside
        the model's trained range by more than a factor 2 (see ``config.json["trained_for"]``).
    progress : callable, optional
        ``progress(done, total, message)``; return ``False`` to cancel.
    """
    if isinstance(model, str | Path) and is_foreign_package(model):  # made elsewhere
        return predict_bioimageio(
            model, image, voxel_size_um=voxel_size_um, device=device, progress=progress
        )
    return _predict(
        model, image, voxel_size_um, tile_shape, halo, blend, device, precision, check, progress,
        flips=[()],
    )[0]  # fmt: skip


def augmentations(model: Model | str | Path) -> list[tuple[int, ...]]:
    """Return the flips (tuples of axes 0=z, 1=y, 2=x) of :func:`predict_with_spread`.

    Every combination of the axes the model was trained to be symmetric along (the PSF's
    symmetry; ``config["data"]["flips_allowed_axes"]``, y and x when it does not say); the
    identity first.
    """
    model = load_model(model)
    axes = (model.config.get("data") or {}).get("flips_allowed_axes", [1, 2])
    axes = [int(a) for a in axes if int(a) in (0, 1, 2)]
    return [c for n in range(len(axes) + 1) for c in itertools.combinations(axes, n)]


def predict_with_spread(
    model: Model | str | Path,
    image: np.ndarray,
    *,
    voxel_size_um=None,
    tile_shape: tuple[int, int, int] | None = None,
    halo: int | None = None,
    blend: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    check: bool = True,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(mean, spread)``: the prediction averaged over flipped inputs, and its spread.

    Test-time augmentation: the input is flipped along every combination of the axes the model
    is symmetric along (:func:`augmentations`: 4 passes for y and x, 8 with z), each prediction
    flipped back; ``mean`` is their average (what :func:`predict` returns for the identity
    alone, averaged) and ``spread`` their standard deviation per voxel, in the image's intensity
    units. Where the network's answer depends on the orientation of the data the spread is
    high: the output there is less supported by the data than its shape. The RL_K channel of the
    physics-aware variant is computed once and flipped with the raw one (the PSF is symmetric
    along those axes). Costs one network pass per flip. Arguments as :func:`predict`.
    """
    flips = augmentations(model)
    return _predict(
        model, image, voxel_size_um, tile_shape, halo, blend, device, precision, check, progress,
        flips=flips,
    )  # fmt: skip


def _predict(
    model, image, voxel_size_um, tile_shape, halo, blend, device, precision, check, progress, *,
    flips: list[tuple[int, ...]],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    model = load_model(model)
    data: Any = image  # an array, or a neurodecon.io.Image (its .data)
    if hasattr(image, "data") and hasattr(image, "voxel_size_um"):  # a neurodecon.io.Image
        voxel_size_um = image.voxel_size_um if voxel_size_um is None else voxel_size_um
        data = image.data
    check_voxel_size(model, voxel_size_um)
    arr = np.asarray(data)
    if arr.ndim < 3:
        raise user_error(
            f"the network needs a 3D stack, got shape {arr.shape}",
            fix="pass a (Z, Y, X) array, or (C, Z, Y, X) / (T, C, Z, Y, X)",
        )
    if not np.all(np.isfinite(arr)):
        raise user_error("the image contains NaN or infinite values", fix="clean the image first")
    vols = arr.reshape(-1, *arr.shape[-3:])
    if check:
        check_levels(model, vols[0])
    out = np.empty(vols.shape, np.float32)
    spread = np.zeros(vols.shape, np.float32)
    dev = resolve_device(device)
    net = place_network(model.net, dev).eval()
    tiles = tiling(model, tile_shape=tile_shape, halo=halo, blend=blend)
    n_runs = len(vols) * len(flips)
    try:
        for i, vol in enumerate(vols):
            norm = normalization_for(model, vol)
            rl = None
            if model.physics:
                from ._physics import model_physics_channel

                rl = model_physics_channel(model, vol, device=str(dev))
            inp = network_input(vol, norm, rl)
            runs = []
            for j, axes in enumerate(flips):
                k_run = i * len(flips) + j

                def sub(d, t, msg, _k=k_run):
                    report(progress, d + _k * t, t * n_runs, msg)

                runs.append(
                    predict_normalized(net, inp, norm, tiles, flip=axes, device=dev,
                                       precision=precision, progress=sub if progress else None)
                )  # fmt: skip
            out[i] = np.mean(runs, axis=0) if len(runs) > 1 else runs[0]
            if len(runs) > 1:
                spread[i] = np.std(runs, axis=0)
    finally:
        model.net.to("cpu", memory_format=torch.contiguous_format)  # as it was loaded
    return out.reshape(arr.shape), spread.reshape(arr.shape)


@dataclass(frozen=True)
class Tiling:
    """How inference tiles a volume: tile cores, context, cross-fade, the network's multiple.

    Every size is a multiple of ``multiple`` (tiles then start on the network's pooling grid).
    A voxel's prediction sees at least ``halo`` voxels of context on every side where the
    volume continues; ``context`` (``halo + blend``) is how far its tile reaches.
    """

    tile: tuple[int, int, int]
    halo: int
    blend: int
    multiple: int

    @property
    def context(self) -> int:
        """Return how far from a voxel the data can change its prediction (``halo + blend``)."""
        return self.halo + self.blend


def tiling(
    model: Model,
    *,
    tile_shape: Sequence[int] | None = None,
    halo: int | None = None,
    blend: int | None = None,
) -> Tiling:
    """Return the :class:`Tiling` :func:`predict` uses for ``model`` with these options.

    Defaults: tiles of ``DEFAULT_TILE``, the model's recorded halo (16 voxels), a cross-fade of
    the network's multiple; each rounded up to that multiple.
    """
    pcfg = model.predict_config
    m = int(pcfg["multiple"])
    z, y, x = (_round_up(t, m) for t in (tile_shape or DEFAULT_TILE))
    h = _round_up(pcfg["halo"] if halo is None else halo, m)
    return Tiling((z, y, x), h, _round_up(m if blend is None else blend, m), m)


def normalization_for(model: Model, volume: np.ndarray) -> Normalization:
    """Return the normalisation ``predict`` maps ``volume`` with: the model's percentiles of it.

    ``volume`` is the whole volume (one channel/time point), never a tile; a blocked run passes
    the whole volume's voxels or a uniform lattice sample of them (``neurodecon.blocked``).
    """
    return robust_range(volume, tuple(model.predict_config["normalization"]["percentiles"]))


def network_input(
    volume: np.ndarray, norm: Normalization, physics: np.ndarray | None = None
) -> np.ndarray:
    """Return the network's input ``(C, Z, Y, X)``.

    The raw volume and, for the physics-aware variant, its RL_K channel, both mapped with the
    one normalisation ``norm``.
    """
    inp = norm.apply(volume)[None]
    if physics is None:
        return inp
    return np.concatenate([inp, norm.apply(physics)[None]])


def predict_normalized(
    net: Callable[[torch.Tensor], torch.Tensor],
    inp: np.ndarray,
    norm: Normalization,
    tiles: Tiling,
    *,
    flip: tuple[int, ...] = (),
    device: torch.device,
    precision: str = "auto",
    progress: Callable[[int, int, str], Any] | None = None,
    origin: Sequence[int] = (0, 0, 0),
    full_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Run ``net`` tiled on the input of :func:`network_input`; return intensities ``(Z, Y, X)``.

    The input is flipped along ``flip`` (0=z, 1=y, 2=x) and the prediction flipped back, mapped
    back with ``norm`` and clipped at 0: fluorescence is not negative, and the network's
    residual can dip below zero in dark noisy regions (RL's output never does). ``origin``,
    ``full_shape``: the input is a region of a larger volume (:func:`predict_tiled`; no flip).
    """
    ax = tuple(a + 1 for a in flip)  # channel axis first
    x = np.ascontiguousarray(np.flip(inp, ax)) if ax else inp
    y = predict_tiled(
        net, x, tile=tiles.tile, halo=tiles.halo, blend=tiles.blend, m=tiles.multiple,
        device=device, precision=precision, progress=progress, origin=origin,
        full_shape=full_shape,
    )  # fmt: skip
    return np.maximum(norm.invert(np.flip(y, flip) if flip else y), 0.0)


def _autocast(device: torch.device, precision: str):
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise user_error(f"unknown precision {precision!r}", fix="use auto, fp32, bf16 or fp16")
    return torch.autocast(device.type, dtype=dtype)


def _axis_tiles(n: int, core: int, blend: int, halo: int, origin: int = 0, full: int = 0):
    """Per axis: ``(write_start, write_stop, read_start, read_stop, ramp)`` inside the region.

    Tiles of ``core`` are laid on the whole axis (``full`` voxels, the region starting at
    ``origin``); those that write into the region are kept, clipped to it, with their ramps.
    """
    full = full or n
    tiles = []
    for s in range(0, full, core):
        e = min(s + core, full)
        lo, hi = s > 0, e < full
        ws, we = (s - blend if lo else s), (e + blend if hi else e)
        rs, re = max(ws - halo, 0), min(we + halo, full)
        a, b = max(ws - origin, 0), min(we - origin, n)
        if a >= b:
            continue
        ramp = _ramp(ws, we, lo, hi, blend)[a + origin - ws : b + origin - ws]
        tiles.append((a, b, max(rs - origin, 0), min(re - origin, n), ramp))
    return tiles


def _ramp(ws: int, we: int, lo: bool, hi: bool, blend: int) -> np.ndarray:
    t = np.arange(ws, we, dtype=np.float32) + 0.5
    w = np.ones(we - ws, np.float32)
    if lo and blend:
        w = np.minimum(w, np.clip((t - ws) / (2 * blend), 0, 1))
    if hi and blend:
        w = np.minimum(w, np.clip((we - t) / (2 * blend), 0, 1))
    return w


def predict_tiled(
    net: Callable[[torch.Tensor], torch.Tensor],
    vol: np.ndarray,
    *,
    tile: tuple[int, ...],
    halo: int,
    blend: int,
    m: int,
    device: torch.device,
    precision: str,
    progress: Callable[[int, int, str], Any] | None = None,
    origin: Sequence[int] = (0, 0, 0),
    full_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Run ``net`` tile by tile over normalised channels ``(C, Z, Y, X)``; return ``(Z, Y, X)``.

    Tiles of core ``tile`` are read with ``halo`` voxels of context and written with a linear
    cross-fade of width ``blend``; sizes are padded (symmetric) to multiples of ``m`` and cropped
    back. A tile whose reduced-precision output is not finite is recomputed in fp32 (logged).
    ``origin`` and ``full_shape``: where this region lies in a larger volume (multiples of
    ``m``); the tiles are then the whole volume's, clipped to the region, so a block predicts
    what the whole volume's run does wherever its region holds the tile's context.
    """
    shape = vol.shape[1:]
    padded_shape = tuple(max(_round_up(n, m), m) for n in shape)
    full = tuple(max(_round_up(n, m), m) for n in (full_shape or shape))
    pad = [(0, 0)] + [(0, p - n) for n, p in zip(shape, padded_shape, strict=True)]
    x = np.pad(vol, pad, mode="symmetric") if any(p[1] for p in pad) else vol
    per_axis = [
        _axis_tiles(n, min(c, f), blend if c < f else 0, halo, int(o), f)
        for n, c, o, f in zip(padded_shape, tile, origin, full, strict=True)
    ]
    acc = np.zeros(padded_shape, np.float32)
    wsum = np.zeros(padded_shape, np.float32)
    combos = list(itertools.product(*per_axis))
    for k, combo in enumerate(combos):
        read = tuple(slice(t[2], t[3]) for t in combo)
        inp = torch.from_numpy(np.ascontiguousarray(x[(slice(None), *read)], np.float32))[None].to(
            device
        )
        with torch.no_grad(), _autocast(device, precision):
            pred = net(inp).float()[0, 0].cpu().numpy()
        if not np.isfinite(pred).all():  # a half-precision overflow: this tile again in float32
            log.warning(
                "non-finite network output in %s precision on tile %d; recomputed in fp32",
                precision,
                k + 1,
            )
            with torch.no_grad(), _autocast(device, "fp32"):
                pred = net(inp).float()[0, 0].cpu().numpy()
        inner = tuple(slice(t[0] - t[2], t[1] - t[2]) for t in combo)
        write = tuple(slice(t[0], t[1]) for t in combo)
        rz, ry, rx = (t[4] for t in combo)
        w = rz[:, None, None] * ry[None, :, None] * rx[None, None, :]
        acc[write] += w * pred[inner]
        wsum[write] += w
        if progress:
            progress(k + 1, len(combos), f"tile {k + 1}/{len(combos)}")
    out = acc / np.maximum(wsum, 1e-12)
    return out[tuple(slice(0, n) for n in shape)]
