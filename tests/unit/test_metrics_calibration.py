"""Camera calibration from one stack: offset, gain, read noise and photon levels (issue: noise
calibrated from the beads). Simulated with the issue's microscope: confocal, NA 1.4 oil, 0.35
waves of spherical aberration, 0.15 × 0.05 × 0.05 µm voxels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from neurodecon.metrics import (
    NoiseCalibration,
    calibrate_noise,
    estimate_gain,
    photon_transfer,
    structure_level,
)
from neurodecon.psf import make_psf
from neurodecon.synth import forward_model, phantom

VOX = (0.15, 0.05, 0.05)
OFFSET, READ_NOISE_E = 100.0, 2.0


@pytest.fixture(scope="module")
def psf():
    return make_psf(
        "confocal",
        shape=(21, 41, 41),
        voxel_size_um=VOX,
        na=1.4,
        wavelength_um=0.52,
        excitation_wavelength_um=0.488,
        spherical_waves=0.35,
    )


def _bead_stack(psf, peak_photons: float):
    """14–30 beads of 0.1 µm; scaled so that a bead's image peaks at ``peak_photons``."""
    truth = phantom(
        "beads",
        shape=(40, 160, 160),
        voxel_size_um=VOX,
        seed=1,
        beads_diameter_um=0.1,
        beads_spacing=60,
    )
    unit = forward_model(truth, psf, photons=None)
    return truth, peak_photons * float(truth.max()) / float(unit.max())


def _expected(truth, psf, photons):
    return forward_model(truth, psf, photons=None) * np.float32(photons / truth.max())


def _check(cal: NoiseCalibration, gain: float, expected: np.ndarray):
    assert abs(cal.offset - OFFSET) <= min(1.0, 0.1 * OFFSET)
    assert cal.gain == pytest.approx(gain, rel=0.1)
    assert cal.read_noise_e == pytest.approx(READ_NOISE_E, rel=0.1)
    assert cal.read_noise == pytest.approx(READ_NOISE_E * gain, rel=0.1)
    assert cal.photons == pytest.approx(np.percentile(expected, 99.9), rel=0.1)
    assert not cal.notes


@pytest.mark.parametrize("gain", [0.5, 2.0])
@pytest.mark.parametrize("peak", [60.0, 1000.0])
def test_a_bead_stack_gives_offset_gain_read_noise_and_bead_peaks_within_10_percent(
    psf, gain, peak
):
    truth, photons = _bead_stack(psf, peak)
    img = forward_model(
        truth, psf, photons=photons, read_noise=READ_NOISE_E, offset=OFFSET, gain=gain, seed=2
    )
    expected = _expected(truth, psf, photons)
    cal = calibrate_noise(img)
    _check(cal, gain, expected)
    # every bead's peak: the noise-free image's local maxima
    is_max = expected == ndi.maximum_filter(expected, size=7, mode="nearest")
    true_peaks = expected[is_max & (expected > 0.2 * expected.max())]
    assert len(cal.peaks) == pytest.approx(len(true_peaks), abs=2)
    assert cal.median_peak_photons == pytest.approx(np.median(true_peaks), rel=0.1)


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_a_dense_sample_gives_offset_gain_read_noise_and_photons_within_10_percent(psf, gain):
    truth = phantom("dendrites,clusters", shape=(40, 160, 160), voxel_size_um=VOX, seed=3)
    img = forward_model(
        truth, psf, photons=200.0, read_noise=READ_NOISE_E, offset=OFFSET, gain=gain, seed=1
    )
    cal = calibrate_noise(img)
    _check(cal, gain, _expected(truth, psf, 200.0))
    assert cal.photons > 50


def test_the_calibration_round_trips_through_json():
    rng = np.random.default_rng(0)
    light = np.linspace(0.0, 300.0, 48)[None, None, :] * np.ones((16, 48, 1))
    img = 1.5 * (rng.poisson(light) + rng.normal(0, 2.0, light.shape)) + 50.0
    cal = calibrate_noise(img, source="flat.tif")
    back = NoiseCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back == cal
    d = cal.to_dict()
    assert d["read_noise_e"] == pytest.approx(cal.read_noise_e) and d["source"] == "flat.tif"
    assert "gain" in cal.summary()


def test_a_stack_without_signal_reports_no_gain_and_says_so():
    img = np.random.default_rng(0).normal(100.0, 3.0, (16, 48, 48)).astype(np.float32)
    cal = calibrate_noise(img)
    assert abs(cal.offset - 100.0) < 0.5
    assert np.isnan(cal.gain) and np.isnan(cal.photons) and cal.notes
    assert NoiseCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))).offset == cal.offset


def test_large_stacks_are_cropped_to_the_voxel_budget():
    rng = np.random.default_rng(0)
    light = np.linspace(0.0, 300.0, 96)[None, None, :] * np.ones((16, 96, 1))
    img = rng.poisson(light).astype(np.float32) + 10.0
    cal = calibrate_noise(img, max_voxels=50_000)
    assert cal.n_voxels <= 50_000 and cal.notes and cal.notes[0].startswith("analysed")
    assert cal.gain == pytest.approx(1.0, rel=0.1)


def test_photon_transfer_bins_follow_the_camera_line():
    rng = np.random.default_rng(3)
    light = np.linspace(0.0, 400.0, 64)[None, None, :] * np.ones((16, 64, 1))
    img = 3.0 * (rng.poisson(light) + rng.normal(0, 1.0, light.shape)) + 200.0
    ptc = photon_transfer(img)
    assert ptc.gain == pytest.approx(3.0, rel=0.05) and ptc.gain_se < 0.05 * ptc.gain
    # every bin kept lies on the camera's line variance = g·(mean − offset) + g²σ²
    # (to their scatter: 2 v² / n, n counted per (35/18)³ correlated voxels)
    used = list(ptc.used)
    m, v = np.array(ptc.means)[used], np.array(ptc.variances)[used]
    line = 3.0 * (m - 200.0) + 9.0
    se = line * np.sqrt(2.0 / (np.array(ptc.counts)[used] / (35 / 18) ** 3))
    assert np.all(np.abs(v - line) < 4 * se) and sum(used) > 0.8 * len(used)
    assert estimate_gain(img) == pytest.approx(ptc.gain)
    # the brightest column, plus what is left of its noise after the smoothing (σ ≈ 20 counts)
    assert structure_level(img) == pytest.approx(200.0 + 3.0 * 400.0, rel=0.04)
