"""FSC/FRC and decorrelation analysis: known band limits, an independent FRC, real-data ranking."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import missing_data
from scipy import ndimage as ndi

from neurodecon.errors import NeuroDeconError
from neurodecon.metrics import (
    decorrelation,
    decorrelation_curve,
    frc_resolution,
    fsc,
    periodic_component,
)


def _band_limited(shape, kc, rng):
    """White noise low-passed at normalised radius ``kc`` (1 = Nyquist on every axis), unit std."""
    grids = np.meshgrid(*[2 * np.fft.fftfreq(n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    s = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * (r < kc)))
    return (s / s.std()).astype(np.float32)


@pytest.mark.parametrize("threshold", ["1/7", "half-bit"])
def test_fsc_recovers_band_limit_of_two_noisy_copies_anisotropic(threshold):
    rng = np.random.default_rng(0)
    shape, voxel, kc = (32, 96, 96), (0.3, 0.1, 0.1), 0.45
    s = _band_limited(shape, kc, rng)
    a = s + 0.7 * rng.standard_normal(shape).astype(np.float32)
    b = s + 0.7 * rng.standard_normal(shape).astype(np.float32)
    res = frc_resolution(a, b, voxel_size_um=voxel, threshold=threshold)
    expected = [2 * v / kc for v in voxel]
    np.testing.assert_allclose(res, expected, rtol=0.10)
    curve = fsc(a, b, voxel)
    np.testing.assert_allclose(curve.frequency_per_um, curve.frequency / 0.2)
    assert curve.correlation[(curve.frequency > 0.05) & (curve.frequency < kc - 0.05)].min() > 0.6
    assert np.abs(curve.correlation[curve.frequency > kc + 0.05]).max() < 0.15


@pytest.mark.parametrize("plane", ["xy", "xz", "yz"])
def test_frc_per_plane_recovers_band_limit(plane):
    rng = np.random.default_rng(1)
    shape, voxel, kc = (48, 64, 80), (0.25, 0.1, 0.1), 0.6
    s = _band_limited(shape, kc, rng)
    a = s + 0.5 * rng.standard_normal(shape).astype(np.float32)
    b = s + 0.5 * rng.standard_normal(shape).astype(np.float32)
    axes = {"xy": (1, 2), "xz": (0, 2), "yz": (0, 1)}[plane]
    res = frc_resolution(a, b, voxel_size_um=voxel, plane=plane)
    np.testing.assert_allclose(res, [2 * voxel[i] / kc for i in axes], rtol=0.10)


def test_frc_2d_matches_independent_full_spectrum_computation():
    rng = np.random.default_rng(2)
    a = ndi.gaussian_filter(rng.standard_normal((40, 52)), 2) + 0.1 * rng.standard_normal((40, 52))
    b = ndi.gaussian_filter(rng.standard_normal((40, 52)), 2) + a
    curve = fsc(a, b, 1.0, edges="none", n_bins=20)
    fa, fb = np.fft.fftn(a - a.mean()), np.fft.fftn(b - b.mean())
    ky, kx = np.meshgrid(2 * np.fft.fftfreq(40), 2 * np.fft.fftfreq(52), indexing="ij")
    r = np.hypot(ky, kx)
    expected = []
    for i in range(20):
        m = (r >= i / 20) & (r < (i + 1) / 20) & (r > 0)
        num = np.sum(np.real(fa[m] * np.conj(fb[m])))
        den = np.sqrt(np.sum(np.abs(fa[m]) ** 2) * np.sum(np.abs(fb[m]) ** 2))
        expected.append(num / den if den > 0 else 0.0)
    np.testing.assert_allclose(curve.correlation, expected, atol=1e-4)
    assert curve.n_points.sum() == np.count_nonzero((r < 1) & (r > 0))


def test_fsc_identical_images_give_nyquist_limit_and_noise_crosses_at_once():
    rng = np.random.default_rng(3)
    a = ndi.gaussian_filter(rng.standard_normal((16, 32, 32)), 1.0)
    assert frc_resolution(a, a, voxel_size_um=(0.3, 0.1, 0.1)) == pytest.approx((0.6, 0.2, 0.2))
    n1, n2 = rng.standard_normal((2, 16, 32, 32))
    assert frc_resolution(n1, n2)[0] > 10  # k_c < 0.2 of Nyquist: nothing correlated


def test_fsc_errors_are_one_line_user_errors():
    with pytest.raises(NeuroDeconError, match="shapes differ"):
        fsc(np.zeros((4, 8, 8)), np.zeros((4, 8, 9)))
    with pytest.raises(NeuroDeconError, match="threshold"):
        frc_resolution(np.ones((8, 8)), np.ones((8, 8)), threshold="2-sigma")


def test_periodic_component_removes_the_border_jump_but_keeps_the_interior_detail():
    rng = np.random.default_rng(4)
    ramp = np.linspace(0, 10, 64)[None, :] + np.zeros((64, 1))
    img = ramp + rng.standard_normal((64, 64))
    p = periodic_component(img, (0, 1))
    # the wrap-around jump is gone: first/last columns agree as well as neighbours do
    assert np.abs(p[:, 0] - p[:, -1]).mean() < 2.0 < np.abs(img[:, 0] - img[:, -1]).mean()
    # the removed part is harmonic inside (discrete Laplacian 0): no interior detail is lost
    s = img - p
    lap = s[:-2, 1:-1] + s[2:, 1:-1] + s[1:-1, :-2] + s[1:-1, 2:] - 4 * s[1:-1, 1:-1]
    assert np.abs(lap[1:-1, 1:-1]).max() < 1e-4


# ---- decorrelation --------------------------------------------------------------------------


def test_decorrelation_curve_matches_its_definition():
    rng = np.random.default_rng(5)
    img = ndi.gaussian_filter(rng.standard_normal((48, 48)), 1.5) + 0.2 * rng.standard_normal(
        (48, 48)
    )
    radii, d = decorrelation_curve(img, n_radii=10, edges="none")
    f = np.fft.fftn(img - img.mean())
    f.flat[0] = 0
    fn = np.divide(f, np.abs(f), out=np.zeros_like(f), where=np.abs(f) > 0)
    ky, kx = np.meshgrid(2 * np.fft.fftfreq(48), 2 * np.fft.fftfreq(48), indexing="ij")
    r = np.hypot(ky, kx)
    inside = (r <= 1) & (r > 0)
    for rad, got in zip(radii, d, strict=True):
        m = inside & (r <= rad)
        num = np.sum(np.real(f[m] * np.conj(fn[m])))
        want = num / np.sqrt(np.sum(np.abs(f[inside]) ** 2) * np.count_nonzero(m))
        assert got == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("kc", [0.25, 0.4, 0.6])
def test_decorrelation_recovers_band_limit_of_noisy_image(kc):
    rng = np.random.default_rng(6)
    img = _band_limited((256, 256), kc, rng) + 0.5 * rng.standard_normal((256, 256)).astype(
        np.float32
    )
    res = decorrelation(img, voxel_size_um=(0.1, 0.1))
    assert res.kc == pytest.approx(kc, rel=0.1)
    assert res.resolution_um[0] == pytest.approx(0.2 / kc, rel=0.1)
    assert 0.3 < res.snr < 1


def test_decorrelation_snr_falls_with_noise():
    rng = np.random.default_rng(7)
    s = _band_limited((128, 128), 0.3, rng)
    snr = [
        decorrelation(s + n * rng.standard_normal(s.shape).astype(np.float32)).snr
        for n in (0.2, 0.6, 1.2)
    ]
    assert snr[0] > snr[1] > snr[2] > 0


def test_decorrelation_pure_noise_finds_no_resolution():
    noise = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    res = decorrelation(noise)
    assert np.isnan(res.kc) or res.kc < 0.1


def test_decorrelation_3d_needs_a_plane():
    with pytest.raises(NeuroDeconError, match="plane"):
        decorrelation(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(NeuroDeconError, match="plane"):
        decorrelation(np.zeros((4, 8, 8), np.float32), plane="zz")


def _pollen(shared_data):
    import tifffile

    d = shared_data / "sdeconv"
    if not (d / "pollen.tif").exists():
        missing_data("sdeconv pollen data absent")
    gt = tifffile.imread(d / "pollen.tif").astype(np.float32)
    obs = tifffile.imread(d / "pollen_poisson_noise_blurred.tif").astype(np.float32)
    return gt, obs


def test_decorrelation_ranks_sharp_pollen_above_blurred_copies(shared_data):
    gt, obs = _pollen(shared_data)
    rng = np.random.default_rng(0)
    blurred = ndi.gaussian_filter(gt, 2.0) + rng.normal(0, 200, gt.shape).astype(np.float32)
    for plane in ("xy", "xz", "yz"):
        sharp = decorrelation(gt, plane=plane)
        blur = decorrelation(blurred, plane=plane)
        assert sharp.kc > 1.3 * blur.kc, plane
        assert sharp.resolution_um[0] < blur.resolution_um[0]
    # the published blurred + noisy observation (Gaussian PSF σ = 1 px): lower cut-off on average
    mean_kc = [
        np.mean([decorrelation(x, plane=p).kc for p in ("xy", "xz", "yz")]) for x in (gt, obs)
    ]
    assert mean_kc[0] > mean_kc[1]
