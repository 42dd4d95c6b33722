"""Simulated microscopes shared by the learned-deconvolution benchmarks (issue: learned wins).

Each microscope is a true PSF, a camera (offset, gain, read noise) and photon levels. From it:
a dense bead stack (≥ 10 beads of 100 nm in 40×192×192, as a user would record), and test
volumes of structure families, all imaged with the same PSF and camera. Nothing here is part of
the package: the package only ever sees the bead stack and the test images, like a user.

    camera counts = gain · Poisson(photons · (truth ⊛ PSF) + background) + offset + N(0, read²)

(``neurodecon.synth.forward_model`` with ``gain`` = 1: counts are photo-electrons.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Microscope:
    """A simulated microscope: optics, sampling, camera and photon levels."""

    name: str
    model: str
    optics: dict[str, Any]
    voxel_size_um: tuple[float, float, float]
    psf_shape: tuple[int, int, int]  # the true PSF's box: the real extent of its light
    photons: float  # expected photons at the brightest voxel of a sample's blurred image
    bead_peak: float  # expected photons at the brightest voxel of the blurred bead image
    background: float = 0.0  # photons per voxel (autofluorescence, out-of-focus haze)
    offset: float = 100.0  # camera offset, counts
    read_noise: float = 2.0  # e⁻
    n_beads: int = 14
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


MICROSCOPES = {
    "widefield": Microscope(
        "widefield NA 1.3 oil",
        "widefield",
        {"na": 1.3, "wavelength_um": 0.52, "immersion_index": 1.515},
        (0.2, 0.065, 0.065),
        (47, 127, 127),
        photons=300.0,
        bead_peak=1000.0,
        background=2.0,
        notes="0.2×0.065×0.065 µm; the out-of-focus cone fills the field",
    ),
    "confocal-sa": Microscope(
        "confocal NA 1.4 oil, 0.35 waves spherical",
        "confocal",
        {
            "na": 1.4,
            "wavelength_um": 0.52,
            "excitation_wavelength_um": 0.488,
            "immersion_index": 1.515,
            "pinhole_au": 1.0,
            "spherical_waves": 0.35,
        },
        (0.15, 0.05, 0.05),
        (41, 65, 65),
        photons=200.0,
        bead_peak=1000.0,
        notes="0.15×0.05×0.05 µm; primary spherical aberration 0.35 waves",
    ),
    "confocal-water": Microscope(
        "low-light confocal NA 1.2 water",
        "confocal",
        {
            "na": 1.2,
            "wavelength_um": 0.52,
            "excitation_wavelength_um": 0.488,
            "immersion_index": 1.33,
            "pinhole_au": 1.0,
        },
        (0.2, 0.07, 0.07),
        (41, 65, 65),
        photons=60.0,
        bead_peak=300.0,
        notes="0.2×0.07×0.07 µm; 60 photons at the brightest voxel",
    ),
}


@cache
def true_psf(name: str) -> np.ndarray:
    """Return the microscope's true PSF (float32, sum 1, its peak at n // 2).

    An aberrated PSF's peak lies off its geometric focus (0.35 waves of spherical aberration:
    4 planes, 0.6 µm). Nothing a user measures can tell the two apart — a bead PSF is centred on
    its peak — so the simulated object is placed where the peak is (the box is rolled; the light
    that wraps round the box is 0.24 % here). Otherwise every method with a bead PSF would be
    scored against a truth displaced by that offset.
    """
    from neurodecon.psf import make_psf

    m = MICROSCOPES[name]
    psf = make_psf(m.model, shape=m.psf_shape, voxel_size_um=m.voxel_size_um, **m.optics)
    peak = np.unravel_index(int(np.argmax(psf)), psf.shape)
    shift = tuple(n // 2 - int(p) for n, p in zip(psf.shape, peak, strict=True))
    return np.roll(psf, shift, axis=(0, 1, 2)) if any(shift) else psf


def _sphere(shape, vox, centre, diameter, oversample=5) -> np.ndarray:
    """Partial-volume sphere (sum = its volume in voxels) at a sub-voxel ``centre`` (voxels)."""
    grid = [
        (np.arange(n * oversample) + 0.5) / oversample - 0.5 - c
        for n, c in zip(shape, centre, strict=True)
    ]
    zz, yy, xx = np.meshgrid(*[g * v for g, v in zip(grid, vox, strict=True)], indexing="ij")
    inside = (zz**2 + yy**2 + xx**2) <= (diameter / 2) ** 2
    k = oversample
    return inside.reshape(shape[0], k, shape[1], k, shape[2], k).mean(axis=(1, 3, 5))


def bead_truth(name: str, shape=(40, 192, 192), diameter_um=0.1, seed=0) -> np.ndarray:
    """Return a dense bead field: ``n_beads`` spheres at random sub-voxel positions (float32)."""
    m = MICROSCOPES[name]
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    margin = np.array([4, 12, 12])
    for _ in range(m.n_beads):
        c = rng.uniform(margin, np.array(shape) - margin)
        lo = np.maximum(np.floor(c).astype(int) - 3, 0)
        hi = np.minimum(lo + 7, shape)
        local = _sphere(tuple(hi - lo), m.voxel_size_um, c - lo, diameter_um)
        truth[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += local * rng.uniform(0.8, 1.2)
    return truth


def bead_stack(name: str, seed: int = 0) -> np.ndarray:
    """Return the camera image of the dense bead field (float32 counts)."""
    from neurodecon.synth import convolve, forward_model

    m = MICROSCOPES[name]
    truth = bead_truth(name, seed=seed)
    blurred_peak = float(convolve(truth / truth.max(), true_psf(name)).max())
    return forward_model(
        truth,
        true_psf(name),
        photons=m.bead_peak / blurred_peak,
        background=m.background,
        read_noise=m.read_noise,
        offset=m.offset,
        seed=seed + 100,
    )


def sample(name: str, family: str, shape=(48, 160, 160), seed: int = 0):
    """Return ``(truth, image)`` of a phantom family seen through the microscope."""
    from neurodecon.synth import convolve, forward_model, phantom

    m = MICROSCOPES[name]
    truth = phantom(family, shape=shape, voxel_size_um=m.voxel_size_um, seed=seed)
    # photons count at the brightest voxel of the blurred image (as the bead stack's, and as a
    # user reads "N photons at the brightest voxel" off the data)
    blurred_peak = float(convolve(truth / truth.max(), true_psf(name)).max())
    image = forward_model(
        truth,
        true_psf(name),
        photons=m.photons / blurred_peak,
        background=m.background,
        read_noise=m.read_noise,
        offset=m.offset,
        seed=seed + 1000,
    )
    return truth, image
