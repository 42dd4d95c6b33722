"""The one FFT convolution operator shared by every classical method (CPU and CUDA via torch).

The operator works on a *padded* grid. The observed field of view (FOV) sits at the origin of that
grid; how the rest of the grid is used depends on the boundary model:

``unknown`` (default)
    The grid is at least ``image + psf - 1`` voxels long on every axis (rounded up to a fast FFT
    size), so the circular convolution on it is the exact linear convolution. The object is
    estimated on the whole grid, the data are compared with the model only inside the FOV (mask
    ``m``), and multiplicative updates are normalised by the Bertero–Boccacci weights
    ``1 / (Hᵀ m)``: light from outside the FOV is explained by object outside the FOV, and no
    edge artefacts appear.
``reflect``
    The data are mirrored into the padding and the padded volume is treated as fully observed
    and periodic.
``periodic``
    No padding: circular convolution on the image grid (the FFT's own assumption).

All buffers are float32 / complex64 torch tensors on one device. Choice of backend (measured on
the 2-core development machine, 96×288×288 rfftn + irfftn pair): torch/MKL with preallocated
``out=`` buffers 60 ms, ``scipy.fft`` with 2 workers 108 ms, torch without ``out=`` 104 ms; see
``benchmarks/bench_classical.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.fft import next_fast_len

__all__ = ["BOUNDARIES", "Geometry", "FFTOperator", "plan_geometry", "place_psf"]

BOUNDARIES = ("unknown", "reflect", "periodic")

#: Voxels whose Hᵀm (fraction of their light that falls into the FOV) is below this are not
#: estimated: they are invisible to the data and their update would be 0/0.
WEIGHT_FLOOR = 1e-3


@dataclass(frozen=True)
class Geometry:
    """Where the image lives on the padded grid.

    Attributes
    ----------
    image_shape : tuple of int
        Shape of the input (and output) volume.
    padded_shape : tuple of int
        Shape of the FFT grid.
    crop : tuple of slice
        Slices of the padded grid that hold the image (returned as the result).
    observed : tuple of slice
        Slices of the padded grid where data are compared with the model (the FOV for
        ``unknown``; the whole grid for ``reflect`` and ``periodic``).
    boundary : str
        The boundary model.
    """

    image_shape: tuple[int, ...]
    padded_shape: tuple[int, ...]
    crop: tuple[slice, ...]
    observed: tuple[slice, ...]
    boundary: str

    @property
    def masked(self) -> bool:
        """True when part of the grid is unobserved (``unknown`` boundary)."""
        return self.boundary == "unknown"


def plan_geometry(
    image_shape: tuple[int, ...], psf_shape: tuple[int, ...], boundary: str
) -> Geometry:
    """Choose the FFT grid for an image, a PSF and a boundary model."""
    image_shape = tuple(int(n) for n in image_shape)
    full = tuple(slice(None) for _ in image_shape)
    if boundary == "periodic":
        return Geometry(image_shape, image_shape, full, full, boundary)
    padded = tuple(
        int(next_fast_len(n + m - 1, real=True))
        for n, m in zip(image_shape, psf_shape, strict=True)
    )
    if boundary == "unknown":
        fov = tuple(slice(0, n) for n in image_shape)
        return Geometry(image_shape, padded, fov, fov, boundary)
    if boundary == "reflect":
        crop = tuple(
            slice((p - n) // 2, (p - n) // 2 + n) for n, p in zip(image_shape, padded, strict=True)
        )
        return Geometry(image_shape, padded, crop, full, boundary)
    raise ValueError(f"unknown boundary {boundary!r}")


def place_psf(psf: np.ndarray, padded_shape: tuple[int, ...]) -> np.ndarray:
    """Put ``psf`` (centre at ``n // 2``) on the padded grid with its centre at index 0.

    A PSF larger than the grid (only possible with ``periodic``) is wrapped around, which is what
    circular convolution with it means.
    """
    kernel = np.zeros(padded_shape, dtype=np.float32)
    idx = np.ix_(
        *[(np.arange(m) - m // 2) % p for m, p in zip(psf.shape, padded_shape, strict=True)]
    )
    np.add.at(kernel, idx, psf.astype(np.float32, copy=False))
    return kernel


class FFTOperator:
    """Convolution with one PSF on a padded grid, with its adjoint and preallocated buffers.

    Parameters
    ----------
    psf : ndarray
        Normalised PSF (sum 1, centre at ``n // 2``), same number of dimensions as the image.
    geometry : Geometry
        The padded grid (see :func:`plan_geometry`).
    device : torch.device
        Where every buffer lives.

    Notes
    -----
    Memory: the OTF and one complex scratch (each about one padded float32 volume, as rfftn keeps
    half the spectrum), one real scratch, and for the ``unknown`` boundary the Bertero–Boccacci
    weights. The adjoint uses ``conj(H)·R = conj(H·conj(R))`` so that no conjugate OTF is stored.
    """

    def __init__(self, psf: np.ndarray, geometry: Geometry, device: torch.device):
        self.geometry = geometry
        self.device = device
        self.shape = geometry.padded_shape
        self.dims = tuple(range(-len(self.shape), 0))
        kernel = torch.from_numpy(place_psf(psf, self.shape)).to(device)
        self.otf = torch.fft.rfftn(kernel, dim=self.dims)
        del kernel
        # a point-symmetric PSF has a real OTF: then Hᵀ = H and the adjoint skips two passes
        self.symmetric = bool(self.otf.imag.abs().max() <= 1e-6 * self.otf.abs().max())
        self.spec = torch.empty_like(self.otf)
        self.tmp = torch.empty(self.shape, dtype=torch.float32, device=device)
        self.weights = self._bertero_weights() if geometry.masked else None

    # -- convolution ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = H x`` (``out`` may be ``x``)."""
        torch.fft.rfftn(x, dim=self.dims, out=self.spec)
        self.spec.mul_(self.otf)
        return torch.fft.irfftn(self.spec, s=self.shape, dim=self.dims, out=out)

    def adjoint(self, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = Hᵀ r`` (correlation with the PSF; ``out`` may be ``r``)."""
        torch.fft.rfftn(r, dim=self.dims, out=self.spec)
        if self.symmetric:
            self.spec.mul_(self.otf)
        else:
            self.spec.conj_physical_().mul_(self.otf).conj_physical_()
        return torch.fft.irfftn(self.spec, s=self.shape, dim=self.dims, out=out)

    # -- data region ----------------------------------------------------------------------------
    def observed(self, t: torch.Tensor) -> torch.Tensor:
        """View of ``t`` on the observed region."""
        return t[self.geometry.observed]

    def zero_unobserved_(self, t: torch.Tensor) -> torch.Tensor:
        """Set ``t`` to zero outside the observed region (no-op without a mask)."""
        if not self.geometry.masked:
            return t
        for axis, sl in enumerate(self.geometry.observed):
            index = [slice(None)] * t.ndim
            index[:axis] = self.geometry.observed[:axis]
            index[axis] = slice(sl.stop, None)
            t[tuple(index)] = 0
        return t

    def _bertero_weights(self) -> torch.Tensor:
        w = torch.zeros(self.shape, dtype=torch.float32, device=self.device)
        self.observed(w).fill_(1.0)
        self.adjoint(w, w)  # Hᵀ m: fraction of each voxel's light that lands in the FOV
        valid = w > WEIGHT_FLOOR
        w.reciprocal_()
        w.masked_fill_(~valid, 0.0)
        return w

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        """View of ``t`` on the image (what is returned to the user)."""
        return t[self.geometry.crop]
