"""Data consistency of a result with its raw stack (``neurodecon.consistency``)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gaussian_kernel

from neurodecon.errors import NeuroDeconError
from neurodecon.metrics import consistency
from neurodecon.synth import forward_model, phantom

VS = (0.2, 0.1, 0.1)
PSF = gaussian_kernel((1.6, 1.1, 1.1), (6, 5, 5))
CAMERA = {"photons": 300.0, "background": 8.0, "read_noise": 1.5, "offset": 100.0, "gain": 2.0}


@pytest.fixture(scope="module")
def scene():
    truth = phantom("ellipsoids,tubes", shape=(32, 72, 72), voxel_size_um=VS, seed=4)
    raw = forward_model(truth, PSF, seed=5, **CAMERA)
    return truth.astype(np.float32), raw


def test_the_true_object_is_consistent_at_the_noise_expectation(scene):
    truth, raw = scene
    c = consistency(raw, truth, PSF)
    assert abs(c.score - c.expected) < 0.1 * c.expected, c.score
    assert c.flagged_fraction < 0.002 and c.consistent
    inner = tuple(slice(a, b) for a, b in c.interior)
    assert 0.8 < float(c.map[inner].std()) < 1.2  # the map is N(0, 1) where nothing is wrong
    assert abs(c.noise["gain"] - CAMERA["gain"]) < 0.2 * CAMERA["gain"]  # measured, not given
    # the fitted gain maps the truth's scale to counts: photons at its brightest voxel × gain
    assert abs(c.gain * float(truth.max()) / (CAMERA["photons"] * CAMERA["gain"]) - 1) < 0.05
    assert abs(c.background - (CAMERA["offset"] + CAMERA["gain"] * CAMERA["background"])) < 2


def test_an_invented_bead_is_flagged_where_it_is(scene):
    truth, raw = scene
    fake = truth.copy()
    pos = (16, 30, 44)
    fake[pos] += 3.0 * float(truth.max())  # a bright point the sample does not have
    c = consistency(raw, fake, PSF)
    ref = consistency(raw, truth, PSF)
    assert c.map[pos] < -c.threshold < ref.map[pos]
    assert c.invented_fraction > ref.invented_fraction and c.missing_fraction < 0.002
    # elsewhere the flags are those of the true object (rare clumps of noise), nothing new
    new = (np.abs(c.map) > c.threshold) & ~(np.abs(ref.map) > ref.threshold)
    new[12:21, 24:37, 38:51] = False
    assert new.sum() <= 2


def test_a_result_that_keeps_the_blur_misses_structure(scene):
    """The raw stack itself as the 'result': re-blurred, it is blurred twice."""
    _, raw = scene
    c = consistency(raw, raw, PSF)
    assert c.score > 1.5 and c.missing_fraction > 0.01 and not c.consistent


def test_a_given_noise_model_agrees_with_the_measured_one(scene):
    truth, raw = scene
    g = CAMERA["gain"]
    given = consistency(
        raw,
        truth,
        PSF,
        background=CAMERA["offset"] + g * CAMERA["background"],
        noise_gain=g,
        noise_variance=(g * CAMERA["read_noise"]) ** 2 - g * CAMERA["offset"],
    )
    assert abs(given.score - 1) < 0.1 and given.noise["source"] == "given"


def test_wrong_shapes_and_non_finite_values_are_user_errors(scene):
    truth, raw = scene
    with pytest.raises(NeuroDeconError, match="shape"):
        consistency(raw, truth[:-1], PSF)
    bad = truth.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(NeuroDeconError, match="NaN"):
        consistency(raw, bad, PSF)


def test_one_flagged_limit_decides_the_check_the_warning_and_the_report(scene):
    """``Consistency.consistent``, ``deconvolve --check``'s warning and the report's marking all
    use ``FLAGGED_LIMIT``; a result a few iterations in is over it, the true object far under."""
    from dataclasses import replace

    from neurodecon.classical import deconvolve
    from neurodecon.metrics import FLAGGED_LIMIT
    from neurodecon.report._check import inconsistent

    truth, raw = scene
    early = consistency(raw, np.asarray(deconvolve(raw, PSF, "rl", iterations=3)), PSF)
    assert early.flagged_fraction > FLAGGED_LIMIT and not early.consistent
    assert inconsistent({"consistency_flagged_pct": 100 * early.flagged_fraction})
    good = consistency(raw, truth, PSF)
    assert good.consistent and not inconsistent(
        {"consistency_flagged_pct": 100 * good.flagged_fraction}
    )
    at_limit = replace(good, flagged_fraction=FLAGGED_LIMIT)
    assert at_limit.consistent and not inconsistent(
        {"consistency_flagged_pct": 100 * FLAGGED_LIMIT}
    )
    assert not inconsistent({"consistency_flagged_pct": float("nan")}) and not inconsistent({})
