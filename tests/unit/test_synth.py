"""Phantoms, exact-centred convolution and the camera noise model."""

from __future__ import annotations

import time

import numpy as np
import pytest

from neurodecon.errors import NeuroDeconError
from neurodecon.synth import PHANTOMS, convolve, forward_model, phantom, simulate

VOX = (0.2, 0.1, 0.1)


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# --------------------------------------------------------------------------------------------
# phantoms
@pytest.mark.parametrize("name", PHANTOMS)
def test_phantom_is_float32_in_unit_range_and_reproducible(name):
    a = phantom(name, shape=(24, 48, 40), voxel_size_um=VOX, seed=3)
    b = phantom(name, shape=(24, 48, 40), voxel_size_um=VOX, seed=3)
    c = phantom(name, shape=(24, 48, 40), voxel_size_um=VOX, seed=4)
    assert a.shape == (24, 48, 40) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.2
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_families_draw_from_their_own_streams():
    tubes = phantom("tubes", shape=(16, 32, 32), voxel_size_um=VOX, seed=1)
    both = phantom("tubes,puncta", shape=(16, 32, 32), voxel_size_um=VOX, seed=1)
    puncta = phantom(["puncta"], shape=(16, 32, 32), voxel_size_um=VOX, seed=1)
    np.testing.assert_array_equal(both, np.maximum(tubes, puncta))


def test_margin_draws_a_larger_volume_and_crops_it():
    big = phantom("ellipsoids,tubes", shape=(20, 40, 40), voxel_size_um=VOX, seed=2)
    small = phantom(
        "ellipsoids,tubes", shape=(10, 20, 30), voxel_size_um=VOX, seed=2, margin_px=(5, 10, 5)
    )
    np.testing.assert_array_equal(small, big[5:15, 10:30, 5:35])


@pytest.mark.parametrize("vox", [(0.3, 0.1, 0.1), (0.1, 0.1, 0.1)])
def test_beads_are_round_in_micrometres_whatever_the_voxel_size(vox):
    vol = phantom(
        "beads", shape=(60, 60, 60), voxel_size_um=vox, seed=0, density=3.0, beads_diameter_um=1.2
    )
    from scipy import ndimage

    labels, n = ndimage.label(vol > 0.5)
    assert n >= 2
    extents = []
    for sl in ndimage.find_objects(labels):
        size = [(s.stop - s.start) * v for s, v in zip(sl, vox, strict=True)]
        if all(s.start > 0 and s.stop < 60 for s in sl):
            extents.append(size)
    extents = np.array(extents)
    assert len(extents) >= 3
    # the diameter in µm is the same along z, y and x (to within one voxel; touching beads aside)
    assert np.all(np.abs(np.median(extents, axis=0) - 1.2) <= np.array(vox) + 1e-6)


def test_ellipsoids_follow_the_paper_discrete_intensities():
    vol = phantom("ellipsoids", shape=(32, 64, 64), voxel_size_um=VOX, seed=0)
    assert set(np.unique(vol).tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    custom = phantom(
        "ellipsoids",
        shape=(32, 64, 64),
        voxel_size_um=VOX,
        seed=0,
        ellipsoids_levels=(0.5,),
        ellipsoids_radius_um=(0.4, 0.6),
    )
    assert set(np.unique(custom).tolist()) == {0.0, 0.5}


def test_sponge_is_one_multiply_connected_wall():
    from scipy import ndimage

    vol = phantom("sponge", shape=(32, 96, 96), voxel_size_um=VOX, seed=0)
    labels, n = ndimage.label(vol > 0.3)
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.max() > 0.95 * sizes.sum()  # the wall is one piece ...
    pores, n_pores = ndimage.label(vol < 0.05)
    pore_sizes = np.bincount(pores.ravel())[1:]
    assert np.sort(pore_sizes)[-2] > 0.1 * pore_sizes.sum()  # ... between two big channel systems


def test_density_scales_the_amount_of_structure():
    sparse = phantom("tubes", shape=(32, 64, 64), voxel_size_um=VOX, seed=0, density=0.3)
    dense = phantom("tubes", shape=(32, 64, 64), voxel_size_um=VOX, seed=0, density=3.0)
    assert (dense > 0.1).mean() > 3 * (sparse > 0.1).mean()


def test_bad_phantom_requests_are_user_errors():
    with pytest.raises(NeuroDeconError, match="unknown phantom"):
        phantom("spheres", shape=(8, 8, 8), voxel_size_um=VOX)
    with pytest.raises(NeuroDeconError, match="unknown option"):
        phantom("tubes", shape=(8, 8, 8), voxel_size_um=VOX, tubes_colour=3)
    with pytest.raises(NeuroDeconError, match="voxel size"):
        phantom("tubes", shape=(8, 8, 8), voxel_size_um=(0.1, 0.1))


@pytest.mark.slow
def test_dense_phantoms_are_fast_and_random_crops_contain_structure():
    # the learned model samples 32×64×64 crops: nearly all must contain foreground
    rng = np.random.default_rng(0)
    for name in ("ellipsoids", "tubes", "sheets", "filaments", "sponge", "puncta"):
        t0 = time.perf_counter()
        vol = phantom(name, shape=(64, 256, 256), voxel_size_um=VOX, seed=1)
        elapsed = time.perf_counter() - t0
        assert elapsed < 10.0, f"{name} took {elapsed:.1f} s"  # a few s; generous on a shared CPU
        hits = 0
        for _ in range(30):
            z, y, x = rng.integers(0, 33), rng.integers(0, 193), rng.integers(0, 193)
            hits += (vol[z : z + 32, y : y + 64, x : x + 64] > 0.1).mean() > 0.002
        assert hits >= 27, f"{name}: only {hits}/30 crops contain structure"


# --------------------------------------------------------------------------------------------
# convolution
@pytest.mark.parametrize("vol_shape", [(8, 9, 10), (9, 8, 7)])
@pytest.mark.parametrize("psf_shape", [(4, 6, 5), (5, 5, 5), (6, 4, 8), (12, 13, 12)])
@pytest.mark.parametrize("boundary", ["zero", "periodic"])
def test_a_delta_stays_put_for_even_and_odd_psfs(vol_shape, psf_shape, boundary):
    vol = np.zeros(vol_shape, np.float32)
    vol[3, 4, 2] = 1
    psf = np.zeros(psf_shape, np.float32)
    psf[tuple(n // 2 for n in psf_shape)] = 1
    out = convolve(vol, psf, boundary=boundary)
    assert out.shape == vol_shape
    np.testing.assert_allclose(out, vol, atol=1e-6)


def test_convolve_matches_scipy_full_convolution_cropped_at_the_psf_centre():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(0)
    vol = rng.random((10, 17, 12)).astype(np.float32)
    for psf_shape in [(4, 6, 5), (7, 5, 9)]:
        psf = rng.random(psf_shape).astype(np.float32)
        full = fftconvolve(vol.astype(np.float64), psf.astype(np.float64), mode="full")
        expected = full[
            tuple(slice(k // 2, k // 2 + v) for v, k in zip(vol.shape, psf_shape, strict=True))
        ]
        np.testing.assert_allclose(convolve(vol, psf), expected, rtol=1e-4, atol=1e-4)


def test_periodic_convolution_matches_ifftshift_convention():
    rng = np.random.default_rng(1)
    vol = rng.random((8, 12, 10))
    psf = rng.random((8, 12, 10))
    expected = np.real(np.fft.ifftn(np.fft.fftn(vol) * np.fft.fftn(np.fft.ifftshift(psf))))
    np.testing.assert_allclose(convolve(vol, psf, boundary="periodic"), expected, rtol=1e-4)


def test_convolution_keeps_the_flux_away_from_the_border():
    vol = np.zeros((20, 30, 30), np.float32)
    vol[8:12, 12:18, 12:18] = 1
    psf = np.random.default_rng(0).random((5, 7, 7)).astype(np.float32)
    psf /= psf.sum()
    assert convolve(vol, psf).sum() == pytest.approx(vol.sum(), rel=1e-5)


# --------------------------------------------------------------------------------------------
# forward model
def _gauss_psf():
    from neurodecon.psf import make_psf

    return make_psf("gaussian", shape=(9, 9, 9), voxel_size_um=(1, 1, 1), fwhm_um=(2, 1.5, 1.5))


def test_poisson_noise_has_variance_equal_to_the_mean_plus_read_noise():
    truth = np.ones((16, 64, 64), np.float32)
    img = forward_model(
        truth,
        _gauss_psf(),
        photons=50,
        background=5,
        read_noise=3,
        offset=100,
        seed=0,
        boundary="periodic",
    )
    assert img.dtype == np.float32
    assert img.mean() == pytest.approx(155, rel=0.01)
    assert img.var() == pytest.approx(55 + 9, rel=0.05)


def test_a_camera_gain_scales_photo_electrons_and_read_noise_not_the_offset():
    truth = np.ones((16, 64, 64), np.float32)
    kw = dict(photons=50, background=5, read_noise=3, offset=100, seed=0, boundary="periodic")
    img = forward_model(truth, _gauss_psf(), gain=2.5, **kw)
    # counts = g · (Poisson(55) + N(0, 3²)) + 100
    assert img.mean() == pytest.approx(100 + 2.5 * 55, rel=0.01)
    assert img.var() == pytest.approx(2.5**2 * (55 + 9), rel=0.05)
    # gain 1 is the model without a gain, bit for bit
    one = forward_model(truth, _gauss_psf(), gain=1.0, **kw)
    np.testing.assert_array_equal(one, forward_model(truth, _gauss_psf(), **kw))
    rng = np.random.default_rng(0)
    expected = rng.poisson(np.full(truth.shape, 55.0)).astype(np.float32) + np.float32(100)
    expected += rng.normal(0.0, 3.0, size=truth.shape).astype(np.float32)
    np.testing.assert_allclose(one, expected, atol=1e-3)
    with pytest.raises(NeuroDeconError, match="gain"):
        forward_model(truth, _gauss_psf(), gain=0.0)


def test_forward_model_scales_the_truth_maximum_to_the_photon_budget():
    truth = np.zeros((9, 21, 21), np.float32)
    truth[4, 10, 10] = 7.0
    delta = np.zeros((1, 1, 1), np.float32) + 1
    img = forward_model(truth, delta, photons=None)
    assert img.max() == pytest.approx(7.0)
    means = np.mean(
        [forward_model(truth, delta, photons=400, seed=s)[4, 10, 10] for s in range(40)]
    )
    assert means == pytest.approx(400, rel=0.05)


def test_forward_model_is_seeded():
    truth = phantom("puncta", shape=(8, 24, 24), voxel_size_um=VOX, seed=0)
    a = forward_model(truth, _gauss_psf(), photons=100, read_noise=1, seed=5)
    b = forward_model(truth, _gauss_psf(), photons=100, read_noise=1, seed=5)
    c = forward_model(truth, _gauss_psf(), photons=100, read_noise=1, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_forward_model_rejects_impossible_inputs():
    with pytest.raises(NeuroDeconError, match="negative"):
        forward_model(-np.ones((4, 4, 4)), _gauss_psf())
    with pytest.raises(NeuroDeconError, match="photons"):
        forward_model(np.ones((4, 4, 4)), _gauss_psf(), photons=0)


def test_forward_model_reproduces_sdeconv_pollen(shared_data):
    import tifffile

    d = shared_data / "sdeconv"
    gt = tifffile.imread(d / "pollen.tif").astype(np.float32)
    obs = tifffile.imread(d / "pollen_poisson_noise_blurred.tif")
    psf = tifffile.imread(d / "pollen_psf.tif")  # 32×256×256, centred at n//2
    sim = forward_model(gt, psf, photons=float(gt.max()), seed=0)
    assert corr(sim, obs) >= 0.99
    assert sim.mean() == pytest.approx(obs.mean(), rel=0.02)  # flux kept


def test_forward_model_reproduces_flowdec_bars(shared_data):
    import tifffile

    d = shared_data / "flowdec" / "bars-25pct"
    actual = tifffile.imread(d / "actual.tif")
    data = tifffile.imread(d / "data.tif")
    kernel = tifffile.imread(d / "kernel.tif")  # even-sized, centred at n//2, not normalised
    # PROVENANCE.md: data ≈ 23.73 · (actual ⊛ kernel/Σkernel) + 130.8, made with a circular FFT
    photons = 23.73 * float(actual.max())
    sim = forward_model(
        actual, kernel, photons=photons, background=130.8, seed=0, boundary="periodic"
    )
    assert corr(sim, data) >= 0.97
    assert sim.mean() == pytest.approx(data.mean(), rel=0.05)


# --------------------------------------------------------------------------------------------
# simulate
def test_simulate_blurs_light_from_outside_the_field_into_it():
    kw = {
        "shape": (16, 32, 32),
        "voxel_size_um": VOX,
        "psf_model": "gaussian",
        "psf_params": {"fwhm_um": (1.0, 0.6, 0.6)},
        "photons": None,
        "seed": 0,
    }
    with_margin = simulate("sponge", **kw)
    no_margin = simulate("sponge", margin_px=0, **kw)
    margin = with_margin.parameters["margin_px"]
    assert margin == [n // 2 for n in with_margin.psf.shape]
    big = phantom(
        "sponge",
        shape=[s + 2 * m for s, m in zip(kw["shape"], margin, strict=True)],
        voxel_size_um=VOX,
        seed=0,
    )
    crop = tuple(slice(m, m + s) for m, s in zip(margin, kw["shape"], strict=True))
    np.testing.assert_array_equal(with_margin.truth, big[crop])
    np.testing.assert_allclose(with_margin.image, convolve(big, with_margin.psf)[crop], atol=1e-5)

    def edge_ratio(sim):  # light in the x = 0 plane relative to the truth there
        return sim.image[:, :, 0].sum() / sim.truth[:, :, 0].sum()

    assert edge_ratio(with_margin) > 0.85
    assert edge_ratio(no_margin) < 0.8  # zero outside: part of the light is missing


def test_simulate_writes_truth_image_psf_and_json(tmp_path):
    import json

    from neurodecon.io import read

    out = tmp_path / "sim"
    sim = simulate(
        "tubes,puncta",
        shape=(12, 24, 24),
        voxel_size_um=VOX,
        psf_model="widefield",
        psf_params={"na": 1.2},
        photons=200,
        background=3,
        read_noise=1.5,
        seed=7,
        output_dir=out,
    )
    for name in ("truth", "image", "psf"):
        img = read(out / f"{name}.tif")
        assert img.voxel_size_um == pytest.approx(VOX)
        np.testing.assert_array_equal(img.data, getattr(sim, name))
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["photons"] == 200 and meta["seed"] == 7 and meta["psf"]["model"] == "widefield"
    assert meta["version"]
    with pytest.raises(NeuroDeconError, match="not empty"):
        simulate("tubes", shape=(8, 8, 8), voxel_size_um=VOX, psf_model="gaussian", output_dir=out)
