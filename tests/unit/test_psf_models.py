"""Theoretical PSF models tested as physics and against independent implementations."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from neurodecon.errors import NeuroDeconError
from neurodecon.psf import MODELS, make_psf, psf_info, textbook_fwhm_um


def half_max_width(profile: np.ndarray, spacing: float) -> float:
    """FWHM by linear interpolation of the half-maximum crossings (test oracle, no fit)."""
    p = np.asarray(profile, dtype=np.float64)
    p = p / p.max()
    c = int(np.argmax(p))
    r = c
    while p[r + 1] > 0.5:
        r += 1
    left = c
    while p[left - 1] > 0.5:
        left -= 1
    right_x = r + (p[r] - 0.5) / (p[r] - p[r + 1])
    left_x = left - (p[left] - 0.5) / (p[left] - p[left - 1])
    return (right_x - left_x) * spacing


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _kw(model):
    return {"excitation_wavelength_um": 0.9} if model == "two-photon" else {}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shape", [(16, 32, 32), (17, 33, 31), (12, 20, 26)])
def test_every_model_is_a_centred_normalised_float32_psf(model, shape):
    psf = make_psf(
        model,
        shape=shape,
        voxel_size_um=(0.2, 0.06, 0.06),
        na=1.2,
        wavelength_um=0.55,
        immersion_index=1.33,
        **_kw(model),
    )
    assert psf.shape == shape and psf.dtype == np.float32
    assert psf.min() >= 0
    assert abs(float(psf.sum(dtype=np.float64)) - 1.0) < 1e-5
    assert np.unravel_index(int(np.argmax(psf)), shape) == tuple(n // 2 for n in shape)


@pytest.mark.parametrize("model", ["widefield", "gibson-lanni", "confocal", "two-photon"])
def test_aberration_free_models_are_symmetric(model):
    shape = (21, 25, 25)  # odd: the centre is a voxel, mirror images must match
    psf = make_psf(model, shape=shape, voxel_size_um=(0.15, 0.05, 0.05), **_kw(model))
    tol = 1e-6 * psf.max()
    np.testing.assert_allclose(psf, psf[::-1], atol=tol)
    np.testing.assert_allclose(psf, psf[:, ::-1], atol=tol)
    np.testing.assert_allclose(psf, psf[:, :, ::-1], atol=tol)
    np.testing.assert_allclose(psf, psf.transpose(0, 2, 1), atol=tol)


def test_gaussian_fwhm_is_exact():
    # FWHM/2 falls on a voxel: the profile must be exactly half the peak there
    fwhm = (0.8, 0.3, 0.4)
    vox = (0.1, 0.05, 0.05)
    psf = make_psf("gaussian", shape=(33, 31, 41), voxel_size_um=vox, fwhm_um=fwhm)
    c = (16, 15, 20)
    for axis in range(3):
        step = int(round(fwhm[axis] / 2 / vox[axis]))
        profile = {0: psf[:, c[1], c[2]], 1: psf[c[0], :, c[2]], 2: psf[c[0], c[1], :]}[axis]
        centre = c[axis]
        assert profile[centre + step] / profile[centre] == pytest.approx(0.5, rel=1e-5)
        assert profile[centre - step] / profile[centre] == pytest.approx(0.5, rel=1e-5)


def test_gaussian_without_fwhm_uses_the_textbook_widths():
    vox = (0.05, 0.01, 0.01)
    psf = make_psf(
        "gaussian",
        shape=(41, 61, 61),
        voxel_size_um=vox,
        na=1.0,
        wavelength_um=0.5,
        immersion_index=1.33,
    )
    expected = textbook_fwhm_um(1.0, 0.5, 1.33)
    got = (half_max_width(psf[:, 30, 30], vox[0]), half_max_width(psf[20, :, 30], vox[1]))
    assert got[0] == pytest.approx(expected[0], rel=0.01)
    assert got[1] == pytest.approx(expected[1], rel=0.01)


@pytest.mark.parametrize(
    ("na", "wavelength", "n"),
    [
        (1.4, 0.52, 1.515),
        (1.2, 0.6, 1.33),
        (0.8, 0.45, 1.0),
        (0.5, 0.65, 1.0),
        (1.0, 0.5, 1.33),
    ],
)
def test_widefield_fwhm_matches_textbook_within_10_percent(na, wavelength, n):
    # lateral 0.51 λ/NA (Airy disk), axial 0.88 λ/(n − √(n² − NA²)): see textbook_fwhm_um
    ax, lat, _ = textbook_fwhm_um(na, wavelength, n)
    vox = (ax / 8, lat / 8, lat / 8)
    psf = make_psf(
        "widefield",
        shape=(65, 65, 65),
        voxel_size_um=vox,
        na=na,
        wavelength_um=wavelength,
        immersion_index=n,
    )
    assert half_max_width(psf[32, 32, :], vox[2]) == pytest.approx(lat, rel=0.10)
    assert half_max_width(psf[32, :, 32], vox[1]) == pytest.approx(lat, rel=0.10)
    assert half_max_width(psf[:, 32, 32], vox[0]) == pytest.approx(ax, rel=0.10)


@pytest.mark.parametrize(
    ("na", "wavelength", "n", "vox"),
    [
        (1.4, 0.52, 1.515, (0.1, 0.04, 0.04)),
        (0.9, 0.6, 1.0, (0.25, 0.08, 0.08)),
        (1.1, 0.5, 1.33, (0.15, 0.05, 0.07)),
    ],
)
def test_own_born_wolf_agrees_with_psfmodels_gibson_lanni(na, wavelength, n, vox):
    # widefield = our Hankel integral; gibson-lanni without mismatch = psfmodels' scalar model
    kw = {
        "shape": (32, 48, 40),
        "voxel_size_um": vox,
        "na": na,
        "wavelength_um": wavelength,
        "immersion_index": n,
    }
    ours = make_psf("widefield", **kw)
    theirs = make_psf("gibson-lanni", sample_index=n, **kw)
    assert ncc(ours, theirs) >= 0.99


def test_own_born_wolf_agrees_with_epfl_psf_generator(shared_data):
    import tifffile

    from neurodecon.psf import born_wolf_psf

    # PSFGenerator Gibson–Lanni: NA 1.4, 610 nm, 100 nm pixels, 250 nm steps, 8×16×16, centred at
    # (n − 1)/2 (between voxels): sample our integral on a grid twice as fine and take odd indices
    ref = tifffile.imread(shared_data / "flowdec" / "psfs" / "psfgen1.tif").astype(np.float64)
    fine = born_wolf_psf(
        (17, 33, 33),
        (0.125, 0.05, 0.05),
        na=1.4,
        wavelength_um=0.61,
        immersion_index=1.515,
        oversample=1,
    )
    ours = fine[1::2, 1::2, 1::2]
    assert ours.shape == ref.shape
    assert ncc(ours, ref) >= 0.99


def test_gibson_lanni_index_mismatch_elongates_and_skews_but_stays_centred():
    kw = {
        "shape": (63, 33, 33),
        "voxel_size_um": (0.2, 0.08, 0.08),
        "na": 1.4,
        "immersion_index": 1.515,
    }
    matched = make_psf("gibson-lanni", **kw)
    shallow = make_psf("gibson-lanni", sample_index=1.33, depth_um=5.0, **kw)
    deep = make_psf("gibson-lanni", sample_index=1.33, depth_um=20.0, **kw)
    widths = [half_max_width(p[:, 16, 16], 0.2) for p in (matched, shallow, deep)]
    assert widths[0] < widths[1] < widths[2]
    for p in (shallow, deep):
        assert np.unravel_index(int(np.argmax(p)), p.shape) == (31, 16, 16)
        before, after = p[:31].sum(), p[32:].sum()
        assert abs(after - before) / (after + before) > 0.05  # axially asymmetric


def test_widefield_with_mismatch_switches_to_gibson_lanni():
    kw = {
        "shape": (32, 33, 33),
        "voxel_size_um": (0.2, 0.08, 0.08),
        "sample_index": 1.33,
        "depth_um": 10.0,
    }
    np.testing.assert_allclose(
        make_psf("widefield", **kw), make_psf("gibson-lanni", **kw), atol=1e-9
    )


def test_confocal_with_closed_pinhole_is_excitation_times_emission():
    kw = {
        "shape": (21, 33, 33),
        "voxel_size_um": (0.1, 0.04, 0.04),
        "na": 1.3,
        "immersion_index": 1.515,
    }
    conf = make_psf(
        "confocal", wavelength_um=0.55, excitation_wavelength_um=0.488, pinhole_au=0.0, **kw
    )
    product = make_psf("widefield", wavelength_um=0.55, **kw) * make_psf(
        "widefield", wavelength_um=0.488, **kw
    )
    np.testing.assert_allclose(conf, product / product.sum(), atol=1e-6 * conf.max())


def test_confocal_fft_pinhole_equals_direct_convolution():
    from scipy.signal import convolve2d

    from neurodecon.psf import born_wolf_psf, pinhole_disk

    shape, vox = (9, 25, 25), (0.15, 0.05, 0.05)
    diameter = 1.0 * 1.22 * 0.52 / 1.4
    conf = make_psf("confocal", shape=shape, voxel_size_um=vox, pinhole_au=1.0)
    em = born_wolf_psf((9, 45, 45), vox, na=1.4, wavelength_um=0.52, immersion_index=1.515)
    disk = pinhole_disk((21, 21), vox[1:], diameter)
    direct = np.stack([convolve2d(plane, disk, mode="same") for plane in em])[:, 10:35, 10:35]
    ex = born_wolf_psf(shape, vox, na=1.4, wavelength_um=0.52, immersion_index=1.515)
    expected = ex * direct
    np.testing.assert_allclose(conf, expected / expected.sum(), atol=1e-6 * conf.max())


def test_confocal_narrows_with_the_pinhole_and_beats_widefield():
    kw = {
        "shape": (41, 41, 41),
        "voxel_size_um": (0.06, 0.02, 0.02),
        "wavelength_um": 0.52,
        "excitation_wavelength_um": 0.52,
    }
    wide = make_psf("widefield", **kw)
    widths = [
        half_max_width(make_psf("confocal", pinhole_au=au, **kw)[20, 20, :], 0.02)
        for au in (0.2, 1.0, 3.0)
    ]
    assert widths[0] < widths[1] < widths[2] <= half_max_width(wide[20, 20, :], 0.02) * 1.01
    assert widths[0] < 0.8 * half_max_width(wide[20, 20, :], 0.02)


def test_two_photon_is_the_squared_excitation_psf():
    kw = {
        "shape": (21, 31, 31),
        "voxel_size_um": (0.15, 0.05, 0.05),
        "na": 1.0,
        "immersion_index": 1.33,
    }
    tp = make_psf("two-photon", excitation_wavelength_um=0.92, **kw)
    ex = make_psf("widefield", wavelength_um=0.92, **kw).astype(np.float64) ** 2
    np.testing.assert_allclose(tp, ex / ex.sum(), atol=1e-6 * tp.max())
    # squaring an Airy disk narrows it by about √2 (Gaussian approximation, within 15 %)
    w_ex = half_max_width(make_psf("widefield", wavelength_um=0.92, **kw)[10, 15, :], 0.05)
    assert half_max_width(tp[10, 15, :], 0.05) == pytest.approx(w_ex / np.sqrt(2), rel=0.15)


@pytest.mark.parametrize(
    ("model", "kw", "match"),
    [
        ("widefield", {"na": 1.6}, "NA"),
        ("airy", {}, "unknown PSF model"),
        ("two-photon", {}, "excitation wavelength"),
        ("widefield", {"wavelength_um": 520.0}, "implausible"),
        ("gaussian", {"fwhm_um": (0.5, -0.2, 0.2)}, "FWHM"),
        ("confocal", {"pinhole_au": -1.0}, "pinhole"),
    ],
)
def test_bad_parameters_are_one_line_user_errors(model, kw, match):
    with pytest.raises(NeuroDeconError, match=match):
        make_psf(model, shape=(9, 9, 9), voxel_size_um=(0.2, 0.1, 0.1), **kw)


def test_bad_shape_or_voxel_size_are_user_errors():
    with pytest.raises(NeuroDeconError, match="shape"):
        make_psf("widefield", shape=(9, 9), voxel_size_um=(0.2, 0.1, 0.1))
    with pytest.raises(NeuroDeconError, match="voxel size"):
        make_psf("widefield", shape=(9, 9, 9), voxel_size_um=(0.2, 0.0, 0.1))


def test_undersampling_and_truncation_are_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="neurodecon"):
        make_psf("widefield", shape=(3, 9, 9), voxel_size_um=(0.1, 0.3, 0.3))
    text = caplog.text
    assert "Nyquist" in text and "truncated" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="neurodecon"):
        make_psf("widefield", shape=(33, 33, 33), voxel_size_um=(0.1, 0.04, 0.04))
    assert caplog.text == ""


def test_spherical_aberration_follows_the_marechal_strehl_ratio():
    """Zernike Z4^0 of A waves has an RMS of A/√5: Strehl ≈ exp(-(2π A/√5)²) for small A."""
    from neurodecon.psf import born_wolf_psf

    args = dict(na=1.2, wavelength_um=0.5, immersion_index=1.33)
    clean = born_wolf_psf((81, 33, 33), (0.05, 0.04, 0.04), **args)
    for waves in (0.05, 0.1):
        ab = born_wolf_psf((81, 33, 33), (0.05, 0.04, 0.04), spherical_waves=waves, **args)
        strehl = ab.max() / clean.max()
        assert strehl == pytest.approx(np.exp(-((2 * np.pi * waves / np.sqrt(5)) ** 2)), rel=2e-3)
    # a strong aberration breaks the axial symmetry and moves the focus; the model says so
    psf = make_psf(
        "widefield", shape=(61, 33, 33), voxel_size_um=(0.1, 0.05, 0.05), spherical_waves=0.35
    )
    assert psf_info(psf, (0.1, 0.05, 0.05))["axial_asymmetry"] != pytest.approx(0.0, abs=0.02)
    with pytest.raises(NeuroDeconError, match="Born–Wolf"):
        make_psf(
            "gibson-lanni", shape=(9, 9, 9), voxel_size_um=(0.2, 0.1, 0.1), spherical_waves=0.2
        )
