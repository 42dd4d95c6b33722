"""``return_result=True``: the result object reports what actually ran (count, background, ...)."""

from __future__ import annotations

import numpy as np
import pytest
from test_classical import blobs, gaussian_psf, poisson_image

from neurodecon.classical import (
    DeconvolutionResult,
    Deconvolver,
    deconvolve,
    estimate_background,
    parse_iterations,
)
from neurodecon.classical.stopping import auto_iterations, cross_validate
from neurodecon.errors import NeuroDeconError


class _NoHooks:
    def prediction(self, k, model):
        return None

    def step(self, k, x):
        return True


@pytest.fixture(scope="module")
def case():
    psf = gaussian_psf((9, 9, 9), (1.5, 1.2, 1.2))
    y = poisson_image(blobs((16, 32, 32), seed=2, n=20), psf, background=5.0, seed=3)
    return psf, y


@pytest.mark.parametrize("method", ["rl", "rl-accel", "rltv"])
def test_auto_reports_the_count_it_ran(case, method):
    psf, y = case
    res = deconvolve(
        y, psf, method, iterations="auto", background=5.0, device="cpu", return_result=True
    )
    assert isinstance(res, DeconvolutionResult)
    k = res.iterations
    assert isinstance(k, int) and k >= 1
    assert res.iterations_requested == "auto"
    assert res.auto is not None and res.auto["iterations"] == k
    assert res.auto["warm_start"] == (method in ("rl", "rl-accel"))
    assert 1 <= res.auto["half_data_iterations"] <= res.auto["curve_length"] <= res.auto["budget"]
    # the same count chosen by the public stopping rule ...
    dec = Deconvolver(psf, y.shape, method=method, device="cpu")
    assert k == auto_iterations(dec, y, 5.0)
    fixed = deconvolve(
        y, psf, method, iterations=k, background=5.0, device="cpu", return_result=True
    )
    assert fixed.iterations == k and fixed.iterations_requested == k and fixed.auto is None
    tol = {"rtol": 1e-6, "atol": 1e-6 * float(fixed.data.max())}
    if res.auto["warm_start"]:
        # ... and the image of the half-data estimate continued on the full data: not the one
        # a run of that count from the flat start gives
        choice = cross_validate(dec, y, 5.0)
        data = dec.observed_data(y)
        x = dec.initial_estimate(data, 5.0)
        x.copy_(choice.start)
        dec.iterate(data, 5.0, x, choice.full_data_iterations, _NoHooks())
        np.testing.assert_allclose(res.data, dec.op.crop(x).numpy(), **tol)
        assert not np.allclose(res.data, fixed.data, **tol)
    else:
        # ... and the same image as a run with that fixed count
        np.testing.assert_allclose(res.data, fixed.data, **tol)
        # (one iteration more is a different image: the count is not off by one)
        more = deconvolve(y, psf, method, iterations=k + 1, background=5.0, device="cpu")
        assert not np.allclose(res.data, more, **tol)
    # the plain call returns the same array
    plain = deconvolve(y, psf, method, iterations="auto", background=5.0, device="cpu")
    assert isinstance(plain, np.ndarray)
    np.testing.assert_array_equal(plain, res.data)


def test_a_callback_that_stops_early_is_reported(case):
    psf, y = case
    res = deconvolve(
        y,
        psf,
        "rl",
        iterations=10,
        background=5.0,
        device="cpu",
        callback=lambda k, x: k < 4,
        return_result=True,
    )
    assert res.iterations == 4 and res.iterations_requested == 10


def test_background_auto_reports_the_estimate(case):
    psf, y = case
    for method in ("rl", "landweber", "wiener"):
        res = deconvolve(
            y, psf, method, iterations=3, background="auto", device="cpu", return_result=True
        )
        assert res.background == estimate_background(y) > 0, method


def test_negative_background_estimate_is_reported_as_zero_for_poisson_methods(case):
    psf, _ = case
    rng = np.random.default_rng(5)
    truth = blobs((16, 32, 32), seed=4, n=10)
    # offset-free data with read noise, offset over-subtracted by 3: the estimate is negative
    y = poisson_image(truth, psf, background=0.0, seed=6) + rng.normal(-3.0, 1.0, truth.shape)
    y = y.astype(np.float32)
    estimate = estimate_background(y)
    assert estimate < 0
    for method in ("rl", "rl-accel", "rltv"):
        res = deconvolve(
            y, psf, method, iterations=3, background="auto", device="cpu", return_result=True
        )
        assert res.background == 0.0, method
        zero = deconvolve(y, psf, method, iterations=3, background=0.0, device="cpu")
        np.testing.assert_array_equal(res.data, zero)
    for method in ("landweber", "tm"):  # not Poisson: the estimate is used as it is
        res = deconvolve(
            y, psf, method, iterations=3, background="auto", device="cpu", return_result=True
        )
        assert res.background == estimate, method


def test_direct_methods_report_no_iterations_and_the_regularization_used(case):
    psf, y = case
    res = deconvolve(
        y, psf, "tikhonov", iterations=7, background=5.0, device="cpu", return_result=True
    )
    assert res.iterations is None and res.iterations_requested is None and res.auto is None
    assert res.boundary == "reflect"  # "unknown" is mirrored padding for the closed-form filters
    lam = res.regularization
    assert isinstance(lam, float) and lam > 0  # estimated from the data
    again = deconvolve(y, psf, "tikhonov", regularization=lam, background=5.0, device="cpu")
    np.testing.assert_array_equal(res.data, again)
    wiener = deconvolve(y, psf, "wiener", boundary="periodic", device="cpu", return_result=True)
    assert wiener.regularization == 1.0 and wiener.boundary == "periodic"
    rl = deconvolve(y, psf, "rl", iterations=2, device="cpu", return_result=True)
    assert rl.regularization is None and rl.boundary == "unknown" and rl.device == "cpu"
    assert rl.method == "rl" and rl.data.dtype == np.float32 and rl.data.shape == y.shape


def test_channels_give_one_value_per_channel(case):
    psf, y = case
    stack = np.stack([y, 2.0 * y + 10.0])
    res = deconvolve(
        stack, psf, "rl", iterations=3, background="auto", device="cpu", return_result=True
    )
    assert res.data.shape == stack.shape
    assert res.iterations == [3, 3] and res.auto == [None, None]
    assert res.background == [estimate_background(y), estimate_background(stack[1])]
    np.testing.assert_array_equal(
        res.data, deconvolve(stack, psf, "rl", iterations=3, background="auto", device="cpu")
    )
    five = deconvolve(stack[None], psf, "rl", iterations=2, device="cpu", return_result=True)
    assert five.data.shape == (1, *stack.shape) and five.iterations == [2, 2]


def test_deconvolver_call_returns_a_result():
    psf = np.zeros((3, 3, 3), np.float32)
    psf[1, 1, 1] = 1
    dec = Deconvolver(psf, (4, 8, 8), method="landweber", device="cpu")
    res = dec(np.ones((4, 8, 8), np.float32), iterations="5", background=0.5, return_result=True)
    assert res.iterations == 5 and res.background == 0.5 and res.method == "landweber"
    np.testing.assert_allclose(res.data, 0.5, rtol=1e-5)
    assert res.parameters()["iterations"] == 5 and "data" not in res.parameters()


def test_parse_iterations_is_the_engine_check():
    assert parse_iterations("12") == 12 and parse_iterations("Auto") == "auto"
    for bad in (-1, 2.5, True, "many"):
        with pytest.raises(NeuroDeconError, match="iterations must be"):
            parse_iterations(bad)


def test_count_from_flat_is_the_rule_without_warm_start(case):
    """For blocks and shared counts: 2·k½ of plain RL's held-out maximum, and for rl-accel the
    same plain-RL cross-validation mapped to ACCELERATED_FACTOR·√k (the rule measured against
    the oracle before the warm start)."""
    from neurodecon.classical import ACCELERATED_FACTOR

    psf, y = case
    rl = Deconvolver(psf, y.shape, method="rl", device="cpu").count_from_flat(y, background=5.0)
    acc = Deconvolver(psf, y.shape, method="rl-accel", device="cpu").count_from_flat(
        y, background=5.0
    )
    assert not rl.warm_start and rl.start is None and rl.iterations == 2 * rl.half_data_iterations
    assert acc.accelerated and acc.curve == rl.curve
    assert acc.iterations == round(ACCELERATED_FACTOR * rl.iterations**0.5)
    with pytest.raises(NeuroDeconError, match="not iterative"):
        Deconvolver(psf, y.shape, method="wiener", device="cpu").count_from_flat(y)
