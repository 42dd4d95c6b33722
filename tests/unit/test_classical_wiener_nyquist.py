"""Wiener must not amplify noise at the x-Nyquist frequency (regression: vertical stripes).

The Wiener filter smooths the data power spectrum over neighbouring frequencies. On the last,
half-spectrum axis of an ``rfftn`` the Nyquist bin is not a neighbour of DC; wrapping it there
made the filter treat noise at x-Nyquist as signal and multiply it by 1/|H|.
"""

from __future__ import annotations

import numpy as np
import torch

import neurodecon as nd
from neurodecon.classical.spectra import smoothed_power


def _x_nyquist_fraction(v: np.ndarray) -> float:
    v = v - v.mean()
    power = np.abs(np.fft.rfft(v, axis=-1)) ** 2
    return float(power[..., -1].sum() / power.sum())


def test_smoothing_does_not_carry_dc_power_to_the_nyquist_bin():
    spec = torch.zeros((4, 6, 5), dtype=torch.complex64)
    spec[0, 0, 0] = 1000.0  # only DC
    power = smoothed_power(spec, (-3, -2, -1))
    assert float(power[..., -1].abs().max()) == 0.0  # nothing reaches x-Nyquist
    assert float(power[..., 1].max()) > 0.0  # the true neighbour of DC does get some


def test_wiener_adds_no_stripes_at_x_nyquist():
    rng = np.random.default_rng(0)
    shape = (16, 48, 48)
    # dense structure: a lot of low-frequency power, as in real tissue
    truth = 100.0 * nd.synth.phantom("sponge", shape=shape, voxel_size_um=(0.1, 0.05, 0.05), seed=1)
    # a PSF whose lateral OTF is tiny, not zero, at Nyquist (Gaussian, sigma 1 px)
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2 for n in (9, 15, 15)], indexing="ij")
    psf = np.exp(-(x**2 + y**2) / 2.0 - z**2 / (2 * 2.0**2)).astype(np.float32)
    psf /= psf.sum()
    data = rng.poisson(nd.synth.convolve(truth.astype(np.float32), psf) + 5.0).astype(np.float32)
    out = nd.deconvolve(data, psf, method="wiener", background=5.0)
    # measured: 0.02 % with the fix, 10 % when DC power leaked into the Nyquist bin
    assert _x_nyquist_fraction(out) < 0.2 * _x_nyquist_fraction(data)
    assert np.isfinite(out).all()
