"""Report machinery on plain arrays: where figures look, orthogonal views, spectra, PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from neurodecon.report import _figures, _views

VS = (0.3, 0.1, 0.1)


def _blobs(
    shape=(24, 64, 64),
    centres=((12, 20, 20), (8, 40, 45), (16, 30, 50)),
    amps=(1.0, 3.0, 2.0),
    sigma=(1.0, 1.5, 1.5),
):
    v = np.zeros(shape, np.float32)
    for c, a in zip(centres, amps, strict=True):
        v[c] = a
    return ndimage.gaussian_filter(v, sigma) * 100


def test_find_small_objects_finds_planted_blobs_brightest_first():
    vol = _blobs()
    found = _views.find_small_objects(vol, VS)
    assert len(found) == 3
    assert [tuple(f) for f in found] == [(8, 40, 45), (16, 30, 50), (12, 20, 20)]
    assert _views.brightest_small_structure(vol, VS) == (8, 40, 45)


def test_find_small_objects_ignores_noise_and_borders():
    rng = np.random.default_rng(1)
    noise = rng.normal(10, 1, (24, 64, 64)).astype(np.float32)
    assert len(_views.find_small_objects(noise, VS)) <= 1  # 5-sigma threshold on the DoG
    edge = _blobs(centres=((12, 1, 30),), amps=(5.0,))  # at the y border
    assert len(_views.find_small_objects(edge, VS)) == 0


def test_orthoview_composite_has_physical_proportions_and_keeps_the_point():
    vol = _blobs()
    point = (8, 40, 45)
    comp, boxes = _views.orthoview_composite(vol, point, VS, gap=2)
    z_px = round(24 * VS[0] / VS[2])  # 72: z drawn at the lateral scale
    assert boxes["xy"] == (0, 0, 64, 64)
    assert boxes["yz"][2:] == (64, z_px)
    assert boxes["xz"][2:] == (z_px, 64)
    assert comp.shape == (64 + 2 + z_px, 64 + 2 + z_px)
    r, c = boxes["xy"][:2]
    assert comp[r + 40, c + 45] == pytest.approx(vol[point])
    s = _views.orthoslices(vol, point)
    np.testing.assert_array_equal(s["yz"][:, point[0]], vol[point[0], :, point[2]])


def test_line_profiles_are_centred_on_the_point():
    vol = _blobs()
    prof = _views.line_profiles(vol, (8, 40, 45), VS)
    px, vx = prof["x"]
    assert vx[np.argmin(np.abs(px))] == pytest.approx(vol[8, 40, 45])
    assert px[np.argmax(vx)] == pytest.approx(0.0)
    pz, vz = prof["z"]
    assert len(pz) == vol.shape[0] and pz[np.argmax(vz)] == pytest.approx(0.0)


def test_radial_and_axial_spectra_peak_at_a_sinusoids_frequency():
    z, y, x = np.meshgrid(*(np.arange(n) for n in (32, 64, 64)), indexing="ij")
    f_lat, f_ax = 2.5, 0.625  # cycles/µm: 4 px (x) and 5.33 px (z) periods
    angles = np.linspace(0, np.pi, 12, endpoint=False)  # a ring in the lateral spectrum
    lateral = sum(
        np.cos(2 * np.pi * f_lat * VS[2] * (x * np.cos(a) + y * np.sin(a))) for a in angles
    )
    vol = (lateral / len(angles) + np.cos(2 * np.pi * f_ax * z * VS[0])).astype(np.float32)
    f, p = _views.radial_spectrum(vol, VS)
    assert f[np.argmax(p[1:]) + 1] == pytest.approx(f_lat, abs=f[1] - f[0])
    fz, pz = _views.axial_spectrum(vol, VS)
    assert fz[np.argmax(pz[1:]) + 1] == pytest.approx(f_ax, abs=fz[1] - fz[0])


def test_blur_removes_high_frequency_power():
    rng = np.random.default_rng(0)
    sharp = rng.random((16, 64, 64)).astype(np.float32)
    blurred = ndimage.gaussian_filter(sharp, 2.0)
    f, ps = _views.radial_spectrum(sharp, VS)
    _, pb = _views.radial_spectrum(blurred, VS)
    hi = f > 0.5 * f.max()
    assert (pb[hi] / pb.sum()).sum() < 0.01 * (ps[hi] / ps.sum()).sum()


def test_display_scaling_is_monotonic_and_bounded():
    vol = _blobs()
    d = _views.to_display(vol)
    assert d.min() == 0.0 and d.max() == 1.0
    order = np.argsort(vol.ravel())
    assert np.all(np.diff(d.ravel()[order]) >= 0)
    const = np.ones((4, 4, 4), np.float32)
    assert np.isfinite(_views.to_display(const)).all()


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_figures_write_real_pngs(tmp_path):
    rng = np.random.default_rng(0)
    truth = _blobs()
    vols = {
        "raw": ndimage.gaussian_filter(truth, (2, 3, 3))
        + rng.normal(0, 0.5, truth.shape).astype(np.float32),
        "rl": ndimage.gaussian_filter(truth, 1.0),
        "truth": truth,
    }
    point = _views.brightest_small_structure(vols["raw"], VS)
    paths = [
        _figures.orthoview_figure(vols, point, VS, tmp_path / "o.png"),
        _figures.profile_figure(
            {k: _views.line_profiles(v, point, VS) for k, v in vols.items()},
            tmp_path / "p.png",
            fwhm_um={"rl": {"x": 0.3, "z": 0.9}},
        ),
        _figures.spectra_figure(
            {
                k: {"lateral": _views.radial_spectrum(v, VS), "axial": _views.axial_spectrum(v, VS)}
                for k, v in vols.items()
            },
            tmp_path / "s.png",
        ),
        _figures.fourier_figure(vols, VS, tmp_path / "f.png"),
        _figures.fwhm_figure(
            {k: rng.uniform(0.2, 0.8, (5, 3)) for k in vols},
            tmp_path / "w.png",
            psf_fwhm_um=(0.6, 0.2, 0.2),
        ),
        _figures.metrics_figure(
            {k: {"psnr": 20.0 + i, "ssim": 0.5} for i, k in enumerate(vols)},
            [("psnr", "PSNR", True), ("ssim", "SSIM", True)],
            tmp_path / "m.png",
        ),
        _figures.psf_figure(
            ndimage.gaussian_filter(np.pad(np.ones((1, 1, 1), np.float32), 8), 2),
            VS,
            tmp_path / "psf.png",
            fwhm_um=(1, 0.5, 0.5),
        ),
    ]
    for p in paths:
        w, h = _png_size(p)
        assert w > 200 and h > 150
        assert p.stat().st_size > 5000  # a drawn figure, not a blank canvas


def test_method_colours_are_distinct_and_fixed_for_raw_and_truth():
    c = _figures.method_colours(["raw", "rl", "rltv", "wiener", "neurodecon", "truth"])
    assert c["raw"] == "#888888" and c["truth"] == "#000000"
    assert len(set(c.values())) == 6


def test_rank_with_truth_uses_psnr_and_ssim_ties_to_ssim_nan_last():
    from neurodecon.report import rank

    table = {
        "raw": {"psnr": 20.0, "ssim": 0.4, "nrmse": 0.1},
        "a": {"psnr": 25.0, "ssim": 0.6, "nrmse": 0.0},  # psnr 1st, ssim 2nd
        "b": {"psnr": 24.0, "ssim": 0.8, "nrmse": 0.5},  # psnr 2nd, ssim 1st -> tie, b wins
        "c": {"psnr": float("nan"), "ssim": float("nan")},
    }
    order, criterion, used = rank(table, use_truth=True)
    assert order == ["b", "a", "raw", "c"] and used == ["psnr", "ssim"]
    assert "SSIM" in criterion


def test_rank_without_truth_prefers_finer_resolution_and_higher_snr():
    from neurodecon.report import rank

    def row(res, snr):
        return (
            {f"decorr_{p}_resolution_um": res for p in ("xy", "xz", "yz")}
            | {f"decorr_{p}_snr": snr for p in ("xy", "xz", "yz")}
            | {"entropy_bits": 1.0}
        )

    table = {"raw": row(0.5, 0.5), "sharp": row(0.2, 0.6), "noisy": row(0.2, 0.1)}
    order, _, used = rank(table, use_truth=False)
    assert order == ["sharp", "noisy", "raw"]
    assert len(used) == 6 and "entropy_bits" not in used
