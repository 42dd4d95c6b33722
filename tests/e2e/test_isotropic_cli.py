"""`neurodecon isotropic` end to end: train on a small stack, save the model, reuse it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage


def _write_stack(path, ratio: int = 3, nz: int = 18, n: int = 64):
    """Blobs seen with a z blur ``ratio``× the lateral one, z sampled ``ratio``× coarser."""
    from neurodecon.io import Image, write

    rng = np.random.default_rng(0)
    iso = np.zeros(((nz - 1) * ratio + 1, n, n), np.float32)
    pts = rng.integers(0, iso.shape, size=(150, 3))
    iso[tuple(pts.T)] = 1.0
    iso = ndimage.gaussian_filter(iso, (1.2 * ratio, 1.2, 1.2))[::ratio]
    data = (iso / iso.max() * 800 + 100 + rng.normal(0, 3, iso.shape)).astype(np.float32)
    write(path, Image(data, voxel_size_um=(0.1 * ratio, 0.1, 0.1)))
    return data


def test_cli_isotropic_trains_saves_and_reuses_a_model(tmp_path, run_cli):
    from neurodecon.io import read

    raw = _write_stack(tmp_path / "raw.tif")
    out, model = tmp_path / "iso.tif", tmp_path / "model"
    common = ["--device", "cpu", "--preset", "cpu", "-q"]
    code, stdout, err = run_cli(
        "isotropic", tmp_path / "raw.tif", "-o", out, "--steps", "6", "--save-model", model, *common
    )
    assert code == 0, err
    assert "anisotropy 3.00 restored, 6 training steps" in stdout
    img = read(out)
    assert img.data.shape == (52, 64, 64)  # (18 - 1) · 3 + 1 planes
    assert img.voxel_size_um == pytest.approx(
        (0.1, 0.1, 0.1), rel=1e-6
    )  # isotropic, read back from the file
    # the stack's intensity scale, not its quality: this 6-step 24-channel network shifted the
    # mean by 0.25 of the stack's standard deviation; a wrong scale would be off by multiples
    assert abs(float(img.data.mean()) - float(raw.mean())) < 0.5 * float(raw.std())
    cfg = json.loads((model / "selfnet.json").read_text())
    assert (
        abs(cfg["ratio"] - 3.0) < 1e-9
        and cfg["steps_done"] == 6
        and cfg["config"]["channels"] == 24
    )

    again = tmp_path / "again.tif"
    code, stdout, err = run_cli(
        "isotropic", tmp_path / "raw.tif", "-o", again, "--model", model, *common
    )
    assert code == 0, err
    np.testing.assert_allclose(read(again).data, img.data, rtol=1e-4, atol=1e-2)

    code, _, err = run_cli(
        "isotropic", tmp_path / "raw.tif", "-o", tmp_path / "more.tif", "--steps", "9",
        "--save-model", model, "--resume", *common,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((model / "selfnet.json").read_text())["steps_done"] == 9


def test_cli_isotropic_one_line_errors(tmp_path, run_cli):
    _write_stack(tmp_path / "raw.tif")
    base = ["isotropic", tmp_path / "raw.tif", "--device", "cpu"]
    code, _, err = run_cli(*base, "-o", tmp_path / "a.tif", "--voxel-size", "0.1", "0.1", "0.1")
    assert code == 2 and "already (nearly) isotropic" in err and err.count("\n") == 1
    code, _, err = run_cli(*base, "-o", tmp_path / "b.tif", "--resume")
    assert code == 2 and "--resume needs --save-model" in err
    code, _, err = run_cli(*base, "-o", tmp_path / "c.tif", "--model", tmp_path)
    assert code == 2 and "not a Self-Net model folder" in err and err.count("\n") == 1
    code, _, err = run_cli(*base, "-o", tmp_path / "raw.tif")
    assert code == 2 and "refusing to overwrite the input" in err


def test_compare_runs_isotropic_methods_on_the_isotropic_grid(tmp_path):
    import neurodecon as nd
    from neurodecon.learn import z_interpolate

    raw = _write_stack(tmp_path / "raw.tif")
    truth = z_interpolate(raw, 3.0)  # a stand-in truth on the isotropic grid (52 planes)
    sigma = 1.2 / 2.3548 * 2.3548
    psf = np.zeros((9, 15, 15), np.float32)
    psf[4, 7, 7] = 1
    psf = ndimage.gaussian_filter(psf, (sigma, 1.2 * sigma, 1.2 * sigma))
    summary = nd.compare(
        tmp_path / "raw.tif",
        psf=psf,
        methods="rl,isotropic,rl+isotropic",
        truth=truth,
        iterations=5,
        output_dir=tmp_path / "report",
        device="cpu",
        method_options={
            "isotropic": {"steps": 3, "preset": "cpu"},
            "rl+isotropic": {"steps": 3, "preset": "cpu", "iterations": 5},
        },
    )
    from neurodecon.io import read

    for name in ("rl", "isotropic", "rl+isotropic"):
        img = read(tmp_path / "report" / "results" / f"{name}.tif")
        assert img.data.shape == (52, 64, 64)
        assert img.voxel_size_um == pytest.approx((0.1, 0.1, 0.1), rel=1e-6)
    methods = summary["methods"]
    assert {m["status"] for m in methods.values()} == {"ok"}, methods
    assert methods["rl+isotropic"]["metrics"]["psnr"] > 10
    assert summary["voxel_size_um"] == pytest.approx([0.1, 0.1, 0.1], rel=1e-6)
    with pytest.raises(nd.NeuroDeconError, match="isotropic grid"):
        nd.compare(tmp_path / "raw.tif", methods="isotropic", truth=raw, output_dir=tmp_path / "r2")
