"""Training pairs generated on the fly from a pool of sharp volumes (paper §4.2.2–4.2.3).

A pool of large sharp volumes ``i`` is built once (the user's stacks and/or synthetic phantoms),
each convolved once with the input kernel (``o*`` in bead mode, the PSF in PSF mode) and with the
target kernel (``i*`` in bead mode, identity in PSF mode) by :func:`neurodecon.synth.convolve`.
Crops with enough foreground, flips that the kernels allow, and camera noise (gain · Poisson +
offset + read noise) are drawn per step from a seeded generator.

The noise is drawn here (:func:`add_noise`), not by :func:`neurodecon.synth.forward_model`: the
pool and every batch draw from one shared ``numpy.random.Generator`` (reproducible, resumable
runs), and ``photons`` count at intensity 1 of the sharp volume (not at its maximum) or, with
``photons_at_input``, at the blurred input's brightest structures
(:func:`neurodecon.metrics.structure_level`, what a noise calibration measures on real data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..synth import convolve
from ._norm import Normalization, robust_range
from ._pool_plan import RealisationPlan

log = logging.getLogger("neurodecon")

__all__ = [
    "Pool",
    "build_pool",
    "center_convolve",
    "allowed_flips",
    "scale_to_unit",
    "sample_batch",
    "add_noise",
]


def center_convolve(volume: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """Return the same-shape linear convolution with the kernel centred at ``n // 2``.

    The volume is zero outside; ``kernel=None`` is the identity (a float32 copy). The kernel is
    cropped to what can reach the volume (``2·shape − 1``) and scaled to sum 1, then
    :func:`neurodecon.synth.convolve` (zero boundary) does the work: bit-identical to the
    scipy ``fftconvolve`` this pool used before, except for kernels with all-zero border planes,
    which ``convolve`` trims (a different FFT size: differences of ~1e-7 relative).

    Examples
    --------
    >>> v = np.zeros((5, 5, 5), np.float32)
    >>> v[2, 2, 2] = 1
    >>> k = np.ones((3, 3, 3), np.float32)
    >>> out = center_convolve(v, k)
    >>> round(float(out.sum()), 5), round(float(out[1, 1, 1] * 27), 5)
    (1.0, 1.0)
    """
    if kernel is None:
        return volume.astype(np.float32, copy=True)
    kernel = _crop_kernel(kernel, volume.shape)
    return convolve(volume.astype(np.float32), kernel.astype(np.float32))


def _crop_kernel(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Centred crop of a kernel that is larger than ``2·shape − 1`` (its tail cannot matter)."""
    sl = []
    for n, s in zip(kernel.shape, shape, strict=True):
        keep = min(n, 2 * s - 1)
        start = n // 2 - keep // 2
        sl.append(slice(start, start + keep))
    k = kernel[tuple(sl)]
    return k / k.sum()


def allowed_flips(*kernels: np.ndarray | None, tol: float = 0.05) -> list[int]:
    """Return the axes along which every kernel is mirror-symmetric (flips of a pair are valid).

    Flipping ``(X, Y)`` along an axis equals imaging the flipped object with the flipped kernel, so
    it is only valid where the kernel equals its mirror image (relative L1 difference < ``tol``,
    measured about the centre voxel ``n // 2``).
    """
    axes = []
    for a in range(3):
        ok = True
        for k in kernels:
            if k is None:
                continue
            n = k.shape[a]
            c = n // 2
            h = min(c, n - 1 - c)
            kk = np.take(k, np.arange(c - h, c + h + 1), axis=a)
            asym = np.abs(kk - np.flip(kk, axis=a)).sum() / max(np.abs(kk).sum(), 1e-12)
            ok &= bool(asym < tol)
        if ok:
            axes.append(a)
    return axes


def scale_to_unit(volume: np.ndarray, percentile: float = 99.9) -> np.ndarray:
    """Scale a sharp source volume so that its robust maximum (percentile) is 1, background ≥ 0."""
    v = np.asarray(volume, dtype=np.float32)
    v = v - float(np.percentile(v, 0.5))
    np.maximum(v, 0, out=v)
    top = float(np.percentile(v, percentile))
    if top <= 0:
        top = float(v.max()) or 1.0
    return v / top


@dataclass
class Pool:
    """Blurred inputs ``x``, targets ``y`` and per-(volume, photon level) normalisations."""

    x: list[np.ndarray]
    y: list[np.ndarray]
    norms: list[list[Normalization]]  # per volume, per noise condition (see ``conditions``)
    photons: tuple[float, ...]
    read_noise: float
    flips: list[int]
    y_means: list[float] = field(default_factory=list)
    backgrounds: tuple[float, ...] = (0.0,)
    gain: float = 1.0
    offset: float = 0.0
    # per volume: the factor from a photon level to the photons at intensity 1 of its sharp volume
    photon_scale: list[float] = field(default_factory=list)

    @property
    def conditions(self) -> list[tuple[float, float]]:
        """The (photons, background) pairs, photon-level-major; ``norms[v][c]`` belongs to ``c``."""
        return [(p, b) for p in self.photons for b in self.backgrounds]

    def photons_of(self, v: int, level: float) -> float:
        """Return the photons at intensity 1 of volume ``v``'s sharp volume for a photon level."""
        return level * (self.photon_scale[v] if self.photon_scale else 1.0)

    def input_levels(self) -> dict[str, list[float]]:
        """Return the ranges the inputs span: photons at their brightest structures, dark level.

        ``photons``: :func:`~neurodecon.metrics.structure_level` of each noise-free input times
        its photons (min, max over volumes and levels); ``offset_counts``: ``offset + gain ·
        background`` over the backgrounds. What ``predict`` compares an input with.
        """
        from ..metrics import structure_level

        tops = [structure_level(x) for x in self.x]
        levels = [t * self.photons_of(v, p) for v, t in enumerate(tops) for p in self.photons]
        dark = [self.offset + self.gain * b for b in self.backgrounds]
        return {
            "photons": [float(min(levels)), float(max(levels))],
            "offset_counts": [float(min(dark)), float(max(dark))],
        }

    # physics-aware variant: per volume, fixed noisy realisations (level-major), their RL_K and
    # their normalisations
    noisy: list[list[np.ndarray]] | None = None
    rl: list[list[np.ndarray]] | None = None
    real_norms: list[list[Normalization]] | None = None
    real_levels: list[int] | None = None


# (noisy volume, its true background in intensity units) → RL_K
PhysicsFn = Callable[[np.ndarray, float], np.ndarray]


def build_pool(
    sources: list[np.ndarray],
    kernel_x: np.ndarray,
    kernel_y: np.ndarray | None,
    *,
    photons: tuple[float, ...],
    read_noise: float,
    seed: int,
    norm_percentiles: tuple[float, float],
    backgrounds: tuple[float, ...] = (0.0,),
    gain: float = 1.0,
    offset: float = 0.0,
    photons_at_input: bool = False,
    physics: PhysicsFn | None = None,
    physics_draws: int = 2,
    physics_budget_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Pool:
    """Convolve each sharp source once and record the normalisation that inference will use.

    Noise conditions are all pairs of ``photons`` (expected photo-electrons at intensity 1 of
    the sharp volume; with ``photons_at_input`` at each input's brightest structures, its
    :func:`~neurodecon.metrics.structure_level`) and ``backgrounds`` (expected background
    photons per voxel, left in the input as on a real microscope; the target has none); the
    camera multiplies by ``gain`` and adds ``offset`` counts and read noise (:func:`add_noise`).
    With ``physics`` (the RL_K function), ``physics_draws`` noisy realisations per photon level
    of every whole volume are drawn once (backgrounds taken in turn, shifted by one per volume)
    and ``physics`` is applied to each (RL on the whole volume, as at inference); crops are then
    drawn from these fixed realisations. With ``physics_budget_s``, the first RL_K run is timed
    and, when all realisations would not fit in that budget, every volume gets fewer (at least
    one), the photon levels taken in turn across volumes so that all of them are covered.
    """
    from ..metrics import structure_level

    rng = np.random.default_rng(seed)
    backgrounds = tuple(float(b) for b in backgrounds) or (0.0,)
    camera = {"gain": float(gain), "offset": float(offset)}
    xs, ys, norms, scales = [], [], [], []
    noisy_all, rl_all, rnorm_all = [], [], []
    levels = [lv for lv in range(len(photons)) for _ in range(physics_draws)]
    plan = RealisationPlan(levels, len(sources), physics_budget_s)
    for n, s in enumerate(sources):
        x = center_convolve(s, kernel_x)
        y = center_convolve(s, kernel_y)
        scale = 1.0 / max(structure_level(x), 1e-6) if photons_at_input else 1.0
        per_level = []
        for p in photons:
            for b in backgrounds:
                noisy = add_noise(x, p * scale, read_noise, rng, background=b, **camera)
                per_level.append(robust_range(noisy, norm_percentiles))
        if physics is not None:
            nv, rv, nn = [], [], []
            j = 0
            while j < len(plan.levels_of(n)):  # the plan may shrink after the first RL_K run
                lv = plan.levels_of(n)[j]
                bg = backgrounds[(j + n) % len(backgrounds)]  # every pairing across volumes
                p = photons[lv] * scale
                noisy = add_noise(x, p, read_noise, rng, background=bg, **camera)
                nv.append(noisy)
                # the background the RL channel should see, in the input's units
                with plan.timed():
                    rv.append(physics(noisy, (offset + gain * bg) / (gain * p)))
                nn.append(robust_range(noisy, norm_percentiles))
                j += 1
            noisy_all.append(nv)
            rl_all.append(rv)
            rnorm_all.append(nn)
        xs.append(x)
        ys.append(y)
        norms.append(per_level)
        scales.append(scale)
        if progress:
            progress(n + 1, len(sources))
    pool = Pool(
        xs,
        ys,
        norms,
        tuple(photons),
        read_noise,
        allowed_flips(kernel_x, kernel_y),
        [float(y.mean()) for y in ys],
        backgrounds,
        float(gain),
        float(offset),
        scales,
    )
    if physics is not None:
        pool.noisy, pool.rl, pool.real_norms, pool.real_levels = (
            noisy_all,
            rl_all,
            rnorm_all,
            plan.levels_of(0),
        )
    return pool


def add_noise(
    x: np.ndarray,
    photons: float,
    read_noise: float,
    rng: np.random.Generator,
    *,
    background: float = 0.0,
    gain: float = 1.0,
    offset: float = 0.0,
) -> np.ndarray:
    """Draw a camera's noise; return it in the intensity units of ``x``.

    ``counts = gain · Poisson(x · photons + background) + offset + N(0, read_noise²)``:
    ``photons`` expected photo-electrons at intensity 1 on top of ``background`` photons per
    voxel, ``gain`` counts per photo-electron, ``offset`` and ``read_noise`` in counts. The result
    is ``counts / (gain · photons)``, so the background and offset stay in it, as
    ``(offset + gain · background) / (gain · photons)``. Gain 1 and offset 0 (the defaults) are
    the noise of earlier versions, bit for bit.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.full((64, 64, 64), 0.5, np.float32)
    >>> y = add_noise(x, 200.0, 4.0, rng, gain=2.0, offset=100.0)
    >>> round(float(y.mean()), 2), round(float(y.var() * (2.0 * 200.0) ** 2))  # 0.5 + 100/400
    (0.75, 416)
    """
    counts = rng.poisson(np.clip(x, 0, None) * photons + background).astype(np.float32)
    if gain != 1.0:
        counts *= np.float32(gain)
    if offset:
        counts += np.float32(offset)
    if read_noise:
        counts += rng.normal(0.0, read_noise, size=x.shape).astype(np.float32)
    return counts / np.float32(photons * gain)


def _random_crop(
    pool: Pool,
    v: int,
    patch: tuple[int, int, int],
    rng: np.random.Generator,
    fg_fraction: float,
    tries: int = 20,
) -> tuple[slice, ...]:
    """Return a crop whose target mean is ≥ ``fg_fraction`` × the volume's; else the best one.

    RLN's rule, ``tries`` attempts.
    """
    shape = pool.y[v].shape
    best, best_mean = None, -1.0
    for _ in range(tries):
        start = [int(rng.integers(0, n - p + 1)) for n, p in zip(shape, patch, strict=True)]
        sl = tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))
        m = float(pool.y[v][sl].mean())
        if m >= fg_fraction * pool.y_means[v]:
            return sl
        if m > best_mean:
            best, best_mean = sl, m
    assert best is not None  # tries >= 1 and crop means are > -1
    return best


def sample_batch(
    pool: Pool,
    indices: list[int],
    batch: int,
    patch: tuple[int, int, int],
    rng: np.random.Generator,
    *,
    fg_fraction: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Return one normalised batch of inputs ``(B, C, Z, Y, X)`` and targets ``(B, 1, Z, Y, X)``.

    C = 1 (the noisy input), or 2 (noisy input, its RL_K) for the physics-aware variant.
    """
    real = None
    if pool.rl is not None:  # the physics-aware variant's fixed realisations
        assert pool.noisy is not None and pool.real_norms is not None and pool.real_levels
        real = (pool.noisy, pool.rl, pool.real_norms, pool.real_levels)
    xb = np.empty((batch, 1 if real is None else 2, *patch), np.float32)
    yb = np.empty((batch, 1, *patch), np.float32)
    for b in range(batch):
        v = int(indices[int(rng.integers(len(indices)))])
        if real is not None:
            noisy, rl, real_norms, levels = real
            r = int(rng.integers(len(levels)))
            sl = _random_crop(pool, v, patch, rng, fg_fraction)
            chans = [noisy[v][r][sl], rl[v][r][sl]]
            norm = real_norms[v][r]
        else:
            cond = int(rng.integers(len(pool.conditions)))
            p, bg = pool.conditions[cond]
            sl = _random_crop(pool, v, patch, rng, fg_fraction)
            p = pool.photons_of(v, p)
            chans = [
                add_noise(
                    pool.x[v][sl],
                    p,
                    pool.read_noise,
                    rng,
                    background=bg,
                    gain=pool.gain,
                    offset=pool.offset,
                )
            ]
            norm = pool.norms[v][cond]
        y = pool.y[v][sl]
        for a in pool.flips:
            if rng.random() < 0.5:
                chans, y = [np.flip(c, a) for c in chans], np.flip(y, a)
        for c, arr in enumerate(chans):
            xb[b, c] = norm.apply(arr)
        yb[b, 0] = norm.apply(y)
    return xb, yb
