"""Self-Net's training data, all from the one anisotropic stack.

Three kinds of 2D patches (authors' ``image_slice.m``, ``reslice.m``): lateral ``xy`` slices (the
targets), the same slices degraded along one axis to the axial sampling — resampled to
``1 / ratio`` of their rows with an antialiasing cubic kernel and back (``xy_lr``) — and axial
``xz`` / ``yz`` slices of the stack resampled along z to isotropic pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..errors import user_error
from ._norm import Normalization, robust_range
from ._selfnet_config import MIN_PATCH

__all__ = [
    "MIN_RATIO",
    "WARN_RATIO",
    "anisotropy_ratio",
    "isotropic_voxel_size",
    "z_interpolate",
    "degrade_lateral",
    "axial_spectrum_blur",
    "resample_like_axial",
    "SelfNetData",
]

log = logging.getLogger("neurodecon")

#: Below this z / lateral voxel-size ratio a stack is treated as already isotropic.
MIN_RATIO = 1.2
#: Above this ratio the method degrades (the paper's own limit).
WARN_RATIO = 4.0
_LATERAL_TOLERANCE = 0.02


def anisotropy_ratio(voxel_size_um: Sequence[float], path: object | None = None) -> float:
    """Return ``z / x`` voxel size, refusing unequal lateral sizes and near-isotropic stacks."""
    z, y, x = (float(v) for v in voxel_size_um)
    if min(z, y, x) <= 0:
        raise user_error(f"voxel size {z:g} {y:g} {x:g} µm is not positive", path=path)
    if abs(y - x) > _LATERAL_TOLERANCE * x:
        raise user_error(
            f"lateral voxel sizes differ (y {y:g} µm, x {x:g} µm); Self-Net learns from "
            "square lateral pixels",
            path=path,
            fix="resample the stack to square xy pixels first, or correct --voxel-size",
        )
    ratio = z / x
    if ratio < MIN_RATIO:
        raise user_error(
            f"the stack is already (nearly) isotropic: z / xy voxel size is {ratio:.2f}, "
            f"below {MIN_RATIO}",
            path=path,
            fix="nothing to restore; check --voxel-size Z Y X if z is coarser than xy",
        )
    return ratio


def isotropic_voxel_size(voxel_size_um: Sequence[float]) -> tuple[float, float, float]:
    """Return the output voxel size: the lateral pixel in all three directions."""
    x = float(voxel_size_um[2])
    return (x, x, x)


def isotropic_planes(nz: int, ratio: float) -> int:
    """Planes of the isotropic grid spanning the stack's first to last plane (and no further)."""
    return int(np.floor((nz - 1) * ratio + 1e-6)) + 1


def z_interpolate(volume: np.ndarray, ratio: float, *, order: int = 3) -> np.ndarray:
    """Resample ``(Z, Y, X)`` along z to ``ratio`` times finer planes (cubic spline by default).

    Plane ``k`` of the output lies at ``k / ratio`` planes of the input, so the first planes
    coincide and the output voxel size along z is the input's divided by ``ratio`` exactly.
    """
    vol = np.asarray(volume, np.float32)
    nz = isotropic_planes(vol.shape[0], ratio)
    out = ndimage.affine_transform(
        vol,
        np.array([1.0 / ratio, 1.0, 1.0]),
        output_shape=(nz, *vol.shape[1:]),
        order=order,
        mode="nearest",
    )
    return out.astype(np.float32, copy=False)


def degrade_lateral(planes: np.ndarray, ratio: float) -> np.ndarray:
    """Degrade ``(N, H, W)`` lateral planes along H to the axial sampling, then resize back.

    H is resampled to ``H / ratio`` rows with an antialiased bicubic kernel (the low-pass that
    the coarser axial sampling implies) and back to H rows with a cubic kernel; W is untouched.
    """
    t = torch.from_numpy(np.ascontiguousarray(planes, np.float32))[:, None]
    h, w = t.shape[-2:]
    small = max(2, int(round(h / ratio)))
    down = F.interpolate(t, size=(small, w), mode="bicubic", antialias=True, align_corners=False)
    up = F.interpolate(down, size=(h, w), mode="bicubic", align_corners=False)
    return up[:, 0].numpy()


def resample_like_axial(planes: np.ndarray, ratio: float) -> np.ndarray:
    """Sample ``(N, H, W)`` planes every ``ratio`` rows and interpolate back to H rows.

    The same cubic spline as :func:`z_interpolate` applies to the stack's planes (no low-pass).
    """
    p = np.asarray(planes, np.float32)
    m = isotropic_planes_inverse(p.shape[1], ratio)
    coarse = ndimage.affine_transform(
        p, np.array([1.0, ratio, 1.0]), output_shape=(p.shape[0], m, p.shape[2]), order=3
    )
    fine = ndimage.affine_transform(
        coarse,
        np.array([1.0, 1.0 / ratio, 1.0]),
        output_shape=p.shape,
        order=3,
        mode="nearest",
    )
    return fine.astype(np.float32, copy=False)


def isotropic_planes_inverse(n: int, ratio: float) -> int:
    """Rows of the coarse grid (every ``ratio`` rows) that cover ``n`` fine rows."""
    return int(np.ceil((n - 1) / ratio - 1e-6)) + 1


def stack_normalization(volume: np.ndarray) -> Normalization:
    """Return the stack's mapping to the networks' [0, 1]: its 0.5 and 99.9 percentiles.

    The one mapping of training and restoration.
    """
    return robust_range(volume, (0.5, 99.9))


def _noise_variance(volume: np.ndarray, norm: Normalization) -> tuple[float, float]:
    """Return ``(a, b)`` of the normalised stack's noise variance ``a · v + b`` (calibrated)."""
    from ..metrics import calibrate_noise

    try:
        cal = calibrate_noise(volume)
    except Exception:  # noqa: BLE001 - no calibration (e.g. a constant stack): no noise added
        log.debug("noise calibration failed", exc_info=True)
        return 0.0, 0.0
    gain = cal.gain if np.isfinite(cal.gain) and cal.gain > 0 else 0.0
    rn = cal.read_noise if np.isfinite(cal.read_noise) else 0.0
    s, lo = norm.scale, norm.low
    # var(c) = g (c - offset) + rn², with c = v s + lo
    return gain / s, (gain * (lo - cal.offset) + rn * rn) / (s * s)


def _line_power(planes: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Mean power spectrum of Hann-windowed lines of ``length`` along ``axis`` of a volume."""
    lines = np.moveaxis(planes, axis, -1)[..., :length].reshape(-1, length)
    lines = lines - lines.mean(axis=1, keepdims=True)
    return np.mean(np.abs(np.fft.rfft(lines * np.hanning(length), axis=1)) ** 2, axis=0)


def axial_spectrum_blur(
    degraded: np.ndarray, axial: np.ndarray, ratio: float, *, max_lines: int = 4096
) -> float:
    """Return the axial blur the resampling misses: a Gaussian σ in pixels.

    Added along the degraded axis of the lateral planes, it makes their power spectrum along
    that axis match the axial planes' spectrum along z.

    Under Self-Net's own assumption (structures without a preferred orientation) the two
    spectra differ only by the axial blur that the resampling does not model. The match uses
    the frequencies from 2 % of the pixel frequency to 0.8 × the axial Nyquist frequency
    (``1 / (2 ratio)`` cycles per pixel), where the sampled signal lies; 0 when no blur fits.
    """
    length = int(min(64, axial.shape[0], degraded.shape[1]) // 2 * 2)
    step_l = max(1, degraded.shape[0] * degraded.shape[2] // max_lines)
    ref = _line_power(axial[:, :, ::step_l], 0, length)
    freqs = np.fft.rfftfreq(length)
    band = (freqs >= 0.02) & (freqs <= 0.8 / (2.0 * ratio))
    if band.sum() < 2:
        return 0.0
    sub = degraded[:, :length, ::step_l]
    lateral = _line_power(sub, 1, length)
    best, best_err = 0.0, np.inf
    for sigma in np.arange(0.0, 2.0 * ratio + 1e-6, 0.25):
        gain = np.exp(-((2 * np.pi * freqs * sigma) ** 2))  # |Gaussian transfer|²
        model = lateral * gain
        model = model * ref[band].sum() / max(model[band].sum(), 1e-30)  # the same total power
        err = float(np.mean((np.log(model[band] + 1e-30) - np.log(ref[band] + 1e-30)) ** 2))
        if err < best_err:
            best, best_err = float(sigma), err
    return best


def _blur_sample(
    lateral: np.ndarray, ratio: float, sigma: float, noise: tuple[float, float], seed: int = 0
) -> np.ndarray:
    """Blur along rows by ``sigma``, put back the noise the blur removed, resample like z.

    The order of the axial planes' physics: blur, noise per sample, sampling, interpolation.
    """
    if sigma <= 0:
        return resample_like_axial(lateral, ratio)
    blurred = ndimage.gaussian_filter1d(lateral, sigma, axis=1, mode="nearest")
    delta = np.zeros(int(8 * sigma) * 2 + 1)
    delta[len(delta) // 2] = 1.0
    kept = float((ndimage.gaussian_filter1d(delta, sigma) ** 2).sum())  # noise variance kept
    var = np.maximum(noise[0] * blurred + noise[1], 0.0) * (1.0 - kept)
    rng = np.random.default_rng(seed)
    noisy = blurred + rng.standard_normal(blurred.shape).astype(np.float32) * np.sqrt(var)
    return resample_like_axial(noisy.astype(np.float32), ratio)


@dataclass
class SelfNetData:
    """The normalised stack's lateral, degraded-lateral and axial planes, and a patch sampler.

    ``lateral`` and ``degraded`` are ``(Z, Y, X)``; ``axial`` is the z-interpolated stack,
    ``(Z_iso, Y, X)``, whose xz and yz planes are the axial domain.
    """

    lateral: np.ndarray
    degraded: np.ndarray
    axial: np.ndarray
    norm: Normalization
    ratio: float
    threshold: float
    axial_blur_px: float = 0.0

    @classmethod
    def from_stack(
        cls, volume: np.ndarray, ratio: float, *, match_blur: bool = True
    ) -> SelfNetData:
        """Normalise the whole stack once and build the three domains.

        With ``match_blur`` the degraded lateral planes are also blurred along their degraded
        axis by the Gaussian that :func:`axial_spectrum_blur` measures, so that the degradation
        generator starts from the stack's own axial resolution, not only its sampling.
        """
        norm = stack_normalization(volume)
        lateral = norm.apply(volume)
        axial = z_interpolate(lateral, ratio)
        if not match_blur:  # the authors' degradation: antialiased resampling only
            degraded, sigma = degrade_lateral(lateral, ratio), 0.0
        else:
            sigma = axial_spectrum_blur(resample_like_axial(lateral, ratio), axial, ratio)
            degraded = _blur_sample(lateral, ratio, sigma, _noise_variance(volume, norm))
        return cls(
            lateral=lateral,
            degraded=degraded,
            axial=axial,
            norm=norm,
            ratio=ratio,
            threshold=float(np.percentile(lateral, 75)),
            axial_blur_px=sigma,
        )

    def fitting_patch(self, patch: int) -> int:
        """Return ``patch``, or the largest multiple of 8 (≥ 16) that fits a smaller stack.

        A preset's patch on a small stack: the training then uses every plane it can.
        """
        side = min(self.axial.shape)
        if side >= patch or side < MIN_PATCH:
            return patch
        return max(MIN_PATCH, side // 8 * 8)

    def check_patch(self, patch: int, path: object | None = None) -> None:
        """Refuse a stack too small for one patch in any of its planes."""
        nz, ny, nx = self.axial.shape
        if min(nz, ny, nx) < patch:
            raise user_error(
                f"the stack is too small for {patch}-pixel Self-Net patches (isotropic grid "
                f"{nz}×{ny}×{nx})",
                path=path,
                fix="use a larger stack, or a smaller patch",
            )

    def sample(
        self, rng: np.random.Generator, batch: int, patch: int, *, rotate: bool = True
    ) -> dict[str, np.ndarray]:
        """Return ``batch`` patches of each domain: ``xy_lr`` / ``xy`` paired, ``axial`` not.

        Augmented by the 8 rotations / reflections of a square, or with ``rotate=False`` by the
        4 that keep the degraded (axial) direction along the patch's rows, as at inference.
        """
        xy, xy_lr, ax = [], [], []
        for _ in range(batch):
            k = _dihedral(rng, rotate)
            a, b = self._lateral_pair(rng, patch)
            xy.append(_augment(a, k))
            xy_lr.append(_augment(b, k))
            ax.append(_augment(self._axial_patch(rng, patch), _dihedral(rng, rotate)))
        return {"xy": np.stack(xy), "xy_lr": np.stack(xy_lr), "axial": np.stack(ax)}

    def _lateral_pair(self, rng: np.random.Generator, p: int) -> tuple[np.ndarray, np.ndarray]:
        nz, ny, nx = self.lateral.shape
        for _ in range(8):  # prefer patches with structure (the authors' intensity threshold)
            z, y, x = rng.integers(nz), rng.integers(ny - p + 1), rng.integers(nx - p + 1)
            sharp = self.lateral[z, y : y + p, x : x + p]
            if sharp.max() > self.threshold:
                break
        return sharp, self.degraded[z, y : y + p, x : x + p]

    def _axial_patch(self, rng: np.random.Generator, p: int) -> np.ndarray:
        nz, ny, nx = self.axial.shape
        for _ in range(8):
            z, u = rng.integers(nz - p + 1), rng.integers(min(ny, nx) - p + 1)
            w = rng.integers(max(ny, nx))
            if rng.random() < 0.5:  # an xz plane (fixed y) or a yz plane (fixed x)
                out = self.axial[z : z + p, w % ny, u : u + p]
            else:
                out = self.axial[z : z + p, u : u + p, w % nx]
            if out.max() > self.threshold:
                break
        return out


def _dihedral(rng: np.random.Generator, rotate: bool = True) -> int:
    return int(rng.integers(8)) if rotate else 2 * int(rng.integers(4))


def _augment(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations / reflections of a square patch."""
    out = np.rot90(a, k % 4)
    return np.ascontiguousarray(out[::-1] if k >= 4 else out)
