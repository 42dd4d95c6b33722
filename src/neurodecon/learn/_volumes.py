"""The sharp training volumes: the user's stacks and synthetic phantoms, and their split."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._config import TrainConfig
from ._data import scale_to_unit

__all__ = ["training_volumes", "split_volumes"]

PHANTOM_GENERATOR = "neurodecon.synth.phantom"


def training_volumes(cfg: TrainConfig, sharp: Any = None) -> tuple[list[np.ndarray], dict]:
    """Return the sharp pool volumes (scaled to unit range, shuffled) and their description.

    Parameters
    ----------
    cfg : TrainConfig
        ``data.phantoms`` / ``n_phantoms`` / ``magnification`` / ``pool_shape`` /
        ``voxel_size_um`` (which must be set) and ``run.seed``.
    sharp : folder, file, array or list of those, optional
        The user's sharp volumes (padded symmetrically up to the pool shape), used together with
        the phantoms.

    Returns
    -------
    volumes : list of (Z, Y, X) float32 ndarray
        0.5th percentile → 0, 99.9th percentile → 1 each.
    description : dict
        ``volumes`` (names: ``"phantom:FAMILY:SEED[:xMAG]"`` or the file), ``phantom_generator``,
        ``pool_shape``, ``magnification``, ``scaling`` (the ``training_data`` of config.json).
    """
    data = cfg.data
    if data.voxel_size_um is None:
        raise user_error(
            "the voxel size of the training volumes is not set", fix="set data.voxel_size_um"
        )
    vols: list[np.ndarray] = []
    names: list[str] = []
    for v, name in _sharp_volumes(sharp):
        vols.append(_fit(scale_to_unit(v), data.pool_shape))
        names.append(name)
    fams = list(data.phantoms)
    seed = cfg.run.seed
    if fams:
        from ..synth import phantom

        lo, hi = data.magnification
        mags = np.exp(
            np.random.default_rng(seed + 7).uniform(np.log(lo), np.log(hi), data.n_phantoms)
        )
        for k in range(data.n_phantoms):
            fam = fams[k % len(fams)]
            feature = float(min(data.voxel_size_um[1:]) * mags[k])
            vol = phantom(
                fam.replace("+", ","),  # "a+b" merges families in one volume
                shape=data.pool_shape,
                voxel_size_um=data.voxel_size_um,
                seed=seed * 1000 + k,
                feature_um=feature,
            )
            vols.append(scale_to_unit(np.asarray(vol, np.float32)))
            names.append(
                f"phantom:{fam}:{seed * 1000 + k}"
                + (f":x{mags[k]:.2f}" if (lo, hi) != (1.0, 1.0) else "")
            )
    if not vols:
        raise user_error(
            "no sharp training volumes", fix="pass --sharp DIR and/or --phantoms NAMES"
        )
    # shuffle the source order (the 80/20 split is made per kind, see split_volumes)
    order = np.random.default_rng(seed).permutation(len(vols))
    vols = [vols[i] for i in order]
    names = [names[i] for i in order]
    return vols, {
        "volumes": names,
        "phantom_generator": PHANTOM_GENERATOR if fams else "none",
        "pool_shape": list(data.pool_shape),
        "magnification": list(data.magnification),
        "scaling": "each sharp volume: 0.5th percentile → 0, 99.9th percentile → 1",
    }


def _sharp_volumes(sharp: Any) -> Iterator[tuple[np.ndarray, str]]:
    if sharp is None:
        return
    items = sharp if isinstance(sharp, list | tuple) else [sharp]
    from ..io import read

    for item in items:
        if isinstance(item, np.ndarray):
            yield item, "array"
            continue
        p = Path(item)
        files = (
            sorted(f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".npy"))
            if p.is_dir()
            else [p]
        )
        if not files:
            raise user_error(
                "no .tif/.tiff/.npy stacks in the folder",
                path=p,
                fix="put the sharp training stacks there",
            )
        for f in files:
            data = np.asarray(read(f).data, np.float32)
            while data.ndim > 3:
                data = data[0]
            if data.ndim != 3:
                raise user_error("sharp training stacks must be 3D", path=f)
            yield data, str(f)


def _fit(v: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Pad (symmetric) a sharp volume that is smaller than the pool shape on some axis."""
    pad = [(0, max(0, s - n)) for n, s in zip(v.shape, shape, strict=True)]
    return np.pad(v, pad, mode="symmetric") if any(p[1] for p in pad) else v


def split_volumes(names: list[str], val_fraction: float) -> tuple[list[int], list[int]]:
    """Return the training and validation indices: an 80/20 split stratified by source kind.

    Each kind (phantom family, or the user's stacks) with at least two volumes gives
    ``round(val_fraction · n)`` of them (at least one) to validation, so validation covers every
    kind: a split that put only one family into validation picked the wrong weights
    (bench_learn.py, 2026-11-23).

    Examples
    --------
    >>> split_volumes(["phantom:tubes:0", "phantom:tubes:1", "a.tif"], 0.2)
    ([0, 2], [1])
    """
    n = len(names)
    if n < 2:
        return [0], []
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(_kind(name), []).append(i)
    val: list[int] = []
    for members in groups.values():
        if len(members) >= 2:
            k = min(len(members) - 1, max(1, int(round(val_fraction * len(members)))))
            val += members[-k:]
    if not val:  # single volumes of different kinds: fall back to the last ones
        val = list(range(n - min(n - 1, max(1, int(round(val_fraction * n)))), n))
    val_set = set(val)
    return [i for i in range(n) if i not in val_set], sorted(val)


def _kind(name: str) -> str:  # "phantom:FAMILY:SEED[:xMAG]" → FAMILY
    return name.split(":")[1] if name.startswith("phantom:") else "sharp"
