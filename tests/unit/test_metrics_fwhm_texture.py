"""Bead / line-profile FWHM by Gaussian fits, GLCM texture and Shannon entropy."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecon.errors import NeuroDeconError
from neurodecon.metrics import (
    FWHM_PER_SIGMA,
    bead_fwhm,
    glcm_features,
    line_profile_fwhm,
    shannon_entropy,
)


def _gaussian(shape, center, sigma_um, voxel, amplitude=100.0, offset=7.0):
    g = np.indices(shape).astype(np.float64)
    arg = sum(((g[i] - center[i]) * voxel[i]) ** 2 / (2 * sigma_um[i] ** 2) for i in range(3))
    return (amplitude * np.exp(-arg) + offset).astype(np.float32)


@pytest.mark.parametrize(
    ("sigma_um", "center"),
    [
        ((0.40, 0.12, 0.12), (15.3, 20.6, 21.8)),
        ((0.90, 0.10, 0.16), (14.0, 19.5, 22.2)),
        ((0.25, 0.20, 0.08), (16.7, 21.1, 20.4)),
    ],
)
def test_bead_fwhm_exact_on_sampled_anisotropic_gaussians(sigma_um, center):
    voxel = (0.3, 0.1, 0.08)
    vol = _gaussian((31, 41, 45), center, sigma_um, voxel)
    got = np.array(bead_fwhm(vol, voxel))
    np.testing.assert_allclose(got, FWHM_PER_SIGMA * np.array(sigma_um), rtol=0.02)


def test_bead_fwhm_with_poisson_noise_and_given_center():
    voxel = (0.2, 0.05, 0.05)
    sigma = (0.35, 0.1, 0.1)
    vol = _gaussian((25, 33, 33), (12.4, 16.2, 15.7), sigma, voxel, amplitude=500, offset=20)
    rng = np.random.default_rng(0)
    noisy = rng.poisson(vol).astype(np.float32)
    noisy[0, 0, 0] = 5000  # a hot pixel must not be taken for the bead
    got = np.array(bead_fwhm(noisy, voxel))
    np.testing.assert_allclose(got, FWHM_PER_SIGMA * np.array(sigma), rtol=0.05)
    given = np.array(bead_fwhm(vol, voxel, center=(12.4, 16.2, 15.7)))
    np.testing.assert_allclose(given, FWHM_PER_SIGMA * np.array(sigma), rtol=0.02)


def test_line_profile_fwhm_gaussian_with_offset_and_failure_cases():
    x = np.arange(60)
    prof = 3.0 * np.exp(-((x - 27.4) ** 2) / (2 * 4.2**2)) + 1.5
    assert line_profile_fwhm(prof, 0.05) == pytest.approx(FWHM_PER_SIGMA * 4.2 * 0.05, rel=1e-4)
    assert np.isnan(line_profile_fwhm(np.ones(20)))
    assert np.isnan(line_profile_fwhm(np.array([1.0, 2.0])))


def test_line_profile_fwhm_agrees_with_half_maximum_crossings():
    # an independent estimate: interpolated half-maximum crossings of a finely sampled Gaussian
    x = np.linspace(-5, 5, 2001)
    prof = np.exp(-(x**2) / (2 * 0.7**2))
    above = x[prof >= 0.5]
    assert line_profile_fwhm(prof, x[1] - x[0]) == pytest.approx(
        above[-1] - above[0], abs=2 * (x[1] - x[0])
    )


def test_bead_fwhm_rejects_2d():
    with pytest.raises(NeuroDeconError, match="3D"):
        bead_fwhm(np.ones((8, 8)), (1, 1, 1))


# ---- GLCM and entropy -----------------------------------------------------------------------


def _glcm_reference(img, levels):
    """Symmetric normalised co-occurrence at distance 1 for 0°, 45°, 90°, 135°, counted by hand."""
    asm, idm = [], []
    i, j = np.indices((levels, levels))
    for dy, dx in ((0, 1), (-1, 1), (-1, 0), (-1, -1)):
        p = np.zeros((levels, levels))
        h, w = img.shape
        for y in range(h):
            for x in range(w):
                y2, x2 = y + dy, x + dx
                if 0 <= y2 < h and 0 <= x2 < w:
                    p[img[y, x], img[y2, x2]] += 1
        p = p + p.T
        p /= p.sum()
        asm.append(np.sum(p**2))
        idm.append(np.sum(p / (1 + (i - j) ** 2)))
    return np.mean(asm), np.mean(idm)


def test_glcm_matches_hand_counted_cooccurrence():
    rng = np.random.default_rng(0)
    levels = 4
    q = rng.integers(0, levels, (3, 12, 12))
    feats = glcm_features(q.astype(np.float32) + 0.5, levels=levels)
    ref = np.mean([_glcm_reference(q[z], levels) for z in range(3)], axis=0)
    assert feats["asm"] == pytest.approx(ref[0], rel=1e-9)
    assert feats["idm"] == pytest.approx(ref[1], rel=1e-9)


def test_glcm_uniform_is_one_and_noise_lowers_asm():
    assert glcm_features(np.full((4, 16, 16), 3.0)) == {"asm": 1.0, "idm": 1.0}
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.random((4, 64, 64)), axis=1), axis=2)
    grainy = smooth + 0.1 * np.ptp(smooth) * rng.standard_normal(smooth.shape)
    a, b = glcm_features(smooth), glcm_features(grainy)
    assert a["asm"] > b["asm"] and a["idm"] > b["idm"]


def test_shannon_entropy_known_values():
    assert shannon_entropy(np.full((4, 4), 2.0)) == 0.0
    assert shannon_entropy(np.array([0.0, 1.0] * 50)) == pytest.approx(1.0)
    assert shannon_entropy(np.arange(256.0)) == pytest.approx(8.0)
    rng = np.random.default_rng(2)
    assert shannon_entropy(rng.random(100_000), bins=16) == pytest.approx(4.0, abs=0.01)
