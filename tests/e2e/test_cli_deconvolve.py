"""``neurodecon deconvolve`` end to end on real data."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

DAPI_VOXEL = ("0.3", "0.13", "0.13")


def _crop_dapi(shared_data, tmp_path):
    data = tifffile.imread(shared_data / "deconwolf" / "dapi_001.tif")[8:32, 40:120, 20:84]
    path = tmp_path / "dapi.tif"
    tifffile.imwrite(path, data)
    return path, data


def test_deconvolve_real_widefield_with_model_psf(shared_data, tmp_path, run_cli):
    from neurodecon.io import read

    src, data = _crop_dapi(shared_data, tmp_path)
    out = tmp_path / "out.tif"
    code, stdout, err = run_cli(
        "deconvolve",
        src,
        "--model",
        "widefield",
        "--na",
        "1.45",
        "--wavelength",
        "0.461",
        "--immersion-index",
        "1.512",
        "--psf-shape",
        "31",
        "33",
        "33",
        "--voxel-size",
        *DAPI_VOXEL,
        "--method",
        "rl-accel",
        "--iterations",
        "8",
        "--background",
        "auto",
        "--device",
        "cpu",
        "-o",
        out,
    )
    assert code == 0, err
    img = read(out)
    res = img.data
    assert res.shape == data.shape and res.dtype == np.float32
    assert res.min() >= 0 and np.isfinite(res).all()
    assert img.voxel_size_um == pytest.approx((0.3, 0.13, 0.13))
    # the camera offset (~1750) is not in the result, and the flux above it is kept
    bg = float(np.percentile(data, 1))
    assert res.mean() < data.mean() - 0.5 * bg
    # deconvolution sharpens: more contrast between planes along z
    assert (
        np.std(np.diff(res, axis=0)) / res.mean()
        > np.std(np.diff(data.astype(np.float32), axis=0)) / data.mean()
    )


def test_deconvolve_with_psf_file(shared_data, tmp_path, run_cli):
    bars = shared_data / "flowdec" / "bars-25pct"
    out = tmp_path / "bars.tif"
    code, _, err = run_cli(
        "deconvolve",
        bars / "data.tif",
        "--psf",
        bars / "kernel.tif",
        "--voxel-size",
        "1",
        "1",
        "1",
        "--psf-voxel-size",
        "1",
        "1",
        "1",
        "--method",
        "rl-accel",
        "--iterations",
        "30",
        "--device",
        "cpu",
        "-o",
        out,
    )
    assert code == 0, err
    res = tifffile.imread(out)
    truth = tifffile.imread(bars / "actual.tif")
    data = tifffile.imread(bars / "data.tif")
    corr = lambda a, b: float(np.corrcoef(a.ravel(), b.ravel())[0, 1])  # noqa: E731
    assert corr(res, truth) > corr(data, truth) + 0.01
    # the output exists now: a second run refuses to overwrite it
    code, _, err = run_cli(
        "deconvolve",
        bars / "data.tif",
        "--psf",
        bars / "kernel.tif",
        "--iterations",
        "2",
        "-o",
        out,
    )
    assert code == 2 and err.splitlines()[-1].startswith("error:") and "exists" in err


def test_deconvolve_auto_iterations_and_background(tmp_path, run_cli):
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(0)
    truth = np.zeros((16, 40, 40), np.float32)
    truth[
        tuple(rng.integers(3, 13, 30)),
        tuple(rng.integers(3, 37, 30)),
        tuple(rng.integers(3, 37, 30)),
    ] = 400
    g = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    psf = (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)
    image = rng.poisson(fftconvolve(truth, psf / psf.sum(), mode="same").clip(0) + 10.0).astype(
        np.uint16
    )
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    code, _, err = run_cli(
        "deconvolve",
        tmp_path / "img.tif",
        "--psf",
        tmp_path / "psf.tif",
        "--voxel-size",
        "1",
        "1",
        "1",
        "--psf-voxel-size",
        "1",
        "1",
        "1",
        "--iterations",
        "auto",
        "--background",
        "auto",
        "--device",
        "cpu",
        "-o",
        tmp_path / "out.tif",
    )
    assert code == 0, err
    assert "iterations=auto" in err and "background=auto" in err  # the choices are reported
    res = tifffile.imread(tmp_path / "out.tif")
    assert np.median(res) < 1.0  # the background of 10 is gone
    assert np.sqrt(np.mean((res - truth) ** 2)) < np.sqrt(np.mean((image - 10.0 - truth) ** 2))


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--iterations", "lots"), "iterations"),
        (("--background", "dark"), "background"),
        ((), "no PSF"),
    ],
)
def test_deconvolve_user_errors_are_one_line(shared_data, tmp_path, run_cli, extra, message):
    bars = shared_data / "flowdec" / "bars-25pct"
    args = [
        "deconvolve",
        bars / "data.tif",
        "--voxel-size",
        "1",
        "1",
        "1",
        "-o",
        tmp_path / "o.tif",
    ]
    if message != "no PSF":
        args += ["--psf", bars / "kernel.tif"]
    code, _, err = run_cli(*args, *extra)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last


def test_deconvolve_with_trained_model(shared_data, tmp_path, run_cli):
    learn = pytest.importorskip("neurodecon.learn")
    if not (learn.default_model_path() / "config.json").is_file():
        pytest.skip("no shipped model yet")
    bars = shared_data / "flowdec" / "bars-25pct"
    out = tmp_path / "net.tif"
    code, _, err = run_cli(
        "deconvolve",
        bars / "data.tif",
        "--model",
        "default",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--device",
        "cpu",
        "-o",
        out,
    )
    assert code == 0, err
    res = tifffile.imread(out)
    assert res.shape == tifffile.imread(bars / "data.tif").shape and res.dtype == np.float32
