"""resample_psf, prepare_psf and psf_info: centring, voxel sizes, user errors, real PSF files."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from neurodecon.errors import NeuroDeconError
from neurodecon.psf import center_crop, make_psf, prepare_psf, psf_info, resample_psf


def _peak(a):
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(a)), a.shape))


def test_center_crop_maps_centre_to_centre_for_even_and_odd_sizes():
    for n_in, n_out in [(8, 5), (9, 4), (7, 10), (6, 6)]:
        a = np.zeros(n_in)
        a[n_in // 2] = 1
        assert int(np.argmax(center_crop(a, (n_out,)))) == n_out // 2


def test_resample_to_the_same_voxel_size_is_the_identity():
    psf = make_psf("widefield", shape=(16, 24, 24), voxel_size_um=(0.2, 0.05, 0.05))
    np.testing.assert_allclose(
        resample_psf(psf, (0.2, 0.05, 0.05), (0.2, 0.05, 0.05)), psf, atol=1e-7
    )


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((0.1, 0.04, 0.04), (0.25, 0.1, 0.1)),  # coarser
        ((0.25, 0.1, 0.1), (0.1, 0.05, 0.04)),  # finer, anisotropic lateral
    ],
)
def test_resampling_keeps_physical_width_centre_and_sum(src, dst):
    fwhm = (0.9, 0.45, 0.45)
    psf = make_psf("gaussian", shape=(31, 41, 41), voxel_size_um=src, fwhm_um=fwhm)
    out = resample_psf(psf, src, dst)
    direct = make_psf("gaussian", shape=out.shape, voxel_size_um=dst, fwhm_um=fwhm)
    assert out.dtype == np.float32 and abs(float(out.sum()) - 1) < 1e-5
    assert _peak(out) == tuple(n // 2 for n in out.shape)
    info = psf_info(out, dst)
    # coarser voxels integrate their area: the FWHM grows by at most ~√(1 + v²/(6 FWHM²))
    for axis, name in enumerate("zyx"):
        assert info["fwhm_um"][name] == pytest.approx(fwhm[axis], rel=0.06)
    assert np.abs(out - direct).max() < 0.06 * direct.max()


def test_prepare_psf_recentres_an_off_centre_psf():
    psf = make_psf(
        "gaussian", shape=(15, 21, 21), voxel_size_um=(0.2, 0.1, 0.1), fwhm_um=(0.8, 0.3, 0.3)
    )
    shifted = np.roll(psf, (2, -3, 1), axis=(0, 1, 2))
    out = prepare_psf(shifted, image_shape=(40, 64, 64))
    assert _peak(out) == tuple(n // 2 for n in out.shape)
    assert abs(float(out.sum()) - 1) < 1e-5
    assert out.max() == pytest.approx(psf.max(), rel=1e-3)


def test_prepare_psf_leaves_an_even_sized_centred_psf_alone(shared_data):
    import tifffile

    psf = tifffile.imread(shared_data / "sdeconv" / "pollen_psf.tif")
    out = prepare_psf(psf, image_shape=psf.shape)
    np.testing.assert_allclose(out, psf / psf.sum(dtype=np.float64), rtol=1e-5, atol=1e-9)


def test_prepare_psf_crops_a_psf_larger_than_the_image():
    psf = make_psf(
        "gaussian", shape=(32, 64, 64), voxel_size_um=(0.2, 0.1, 0.1), fwhm_um=(0.8, 0.3, 0.3)
    )
    out = prepare_psf(psf, image_shape=(20, 30, 64))
    assert out.shape == (20, 30, 64)
    assert _peak(out) == (10, 15, 32)


def test_prepare_psf_resamples_on_voxel_size_mismatch(caplog):
    psf = make_psf(
        "gaussian", shape=(31, 41, 41), voxel_size_um=(0.1, 0.05, 0.05), fwhm_um=(0.8, 0.3, 0.3)
    )
    with caplog.at_level(logging.INFO, logger="neurodecon"):
        out = prepare_psf(
            psf,
            image_shape=(64, 64, 64),
            psf_voxel_size_um=(0.1, 0.05, 0.05),
            image_voxel_size_um=(0.2, 0.1, 0.1),
        )
    assert "resampling" in caplog.text
    for n_out, n_in, ratio in zip(out.shape, psf.shape, (2, 2, 2), strict=True):
        assert abs(n_out * ratio - n_in) <= ratio  # same physical extent
    assert psf_info(out, (0.2, 0.1, 0.1))["fwhm_um"]["z"] == pytest.approx(0.8, rel=0.06)


def test_prepare_psf_clips_negative_background():
    psf = make_psf(
        "gaussian", shape=(9, 15, 15), voxel_size_um=(0.2, 0.1, 0.1), fwhm_um=(0.8, 0.3, 0.3)
    )
    noisy = psf - 0.001 * psf.max()
    out = prepare_psf(noisy, image_shape=(20, 20, 20))
    assert out.min() >= 0 and abs(float(out.sum()) - 1) < 1e-5


@pytest.mark.parametrize(
    ("psf", "shape", "match"),
    [
        (np.full((5, 5, 5), np.nan), (8, 8, 8), "NaN"),
        (np.zeros((5, 5, 5)), (8, 8, 8), "no positive"),
        (np.ones((5, 5)), (8, 8, 8), None),  # 2-D PSF for a 3-D image: promoted to 1 plane
        (np.ones((3, 5, 5)), (8, 8), "dimensions"),
        (np.ones((2, 3, 5, 5)), (8, 8, 8), "dimensions"),
    ],
)
def test_prepare_psf_user_errors(psf, shape, match):
    if match is None:
        assert prepare_psf(psf, image_shape=shape).shape == (1, 5, 5)
        return
    with pytest.raises(NeuroDeconError, match=match):
        prepare_psf(psf, image_shape=shape, path="psf.tif")


def test_prepare_psf_warns_about_swapped_axes(caplog):
    psf = make_psf("widefield", shape=(33, 33, 33), voxel_size_um=(0.1, 0.1, 0.1))
    swapped = np.ascontiguousarray(psf.transpose(2, 1, 0))  # (X, Y, Z): elongated along "x"
    with caplog.at_level(logging.WARNING, logger="neurodecon"):
        prepare_psf(swapped, image_shape=(40, 40, 40), image_voxel_size_um=(0.1, 0.1, 0.1))
    assert "axes" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="neurodecon"):
        prepare_psf(psf, image_shape=(40, 40, 40), image_voxel_size_um=(0.1, 0.1, 0.1))
    assert "axes" not in caplog.text


def test_psf_info_reports_centre_fwhm_and_asymmetry():
    vox = (0.1, 0.05, 0.05)
    g = psf_info(
        make_psf("gaussian", shape=(32, 32, 32), voxel_size_um=vox, fwhm_um=(0.6, 0.25, 0.3)), vox
    )
    assert g["centred"] and g["peak"] == [16, 16, 16]
    assert g["fwhm_um"]["z"] == pytest.approx(0.6, rel=1e-3)
    assert g["fwhm_um"]["x"] == pytest.approx(0.3, rel=1e-3)
    assert g["sum"] == pytest.approx(1.0, abs=1e-5)
    symmetric = psf_info(make_psf("widefield", shape=(33, 33, 33), voxel_size_um=vox), vox)
    assert abs(symmetric["axial_asymmetry"]) < 1e-4
    deep = psf_info(
        make_psf(
            "gibson-lanni",
            shape=(33, 17, 17),
            voxel_size_um=(0.2, 0.08, 0.08),
            sample_index=1.33,
            depth_um=10.0,
        ),
        (0.2, 0.08, 0.08),
    )
    assert abs(deep["axial_asymmetry"]) > 0.05
    off = psf_info(
        np.roll(make_psf("gaussian", shape=(9, 9, 9), voxel_size_um=vox), 1, axis=2), vox
    )
    assert not off["centred"]


def test_psf_info_on_a_real_theoretical_kernel(shared_data):
    import tifffile

    kernel = tifffile.imread(shared_data / "flowdec" / "bead-25pct" / "kernel.tif")
    info = psf_info(kernel, (1.0, 1.0, 1.0))
    # PROVENANCE.md: peak (32, 32, 32), FWHM about 1.9 px (z) and 1.4 px (xy), i.e. barely sampled
    assert info["peak"] == [32, 32, 32] and info["centred"]
    assert info["fwhm_um"]["z"] > info["fwhm_um"]["y"] > 0.8
    assert info["fwhm_um"]["y"] == pytest.approx(info["fwhm_um"]["x"], rel=0.05)
    assert info["sum"] == pytest.approx(float(kernel.sum(dtype=np.float64)), rel=1e-6)
