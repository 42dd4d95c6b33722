"""Full-reference metrics, normalisation policy, evaluate() and the `evaluate` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import missing_data
from scipy import ndimage as ndi

from neurodecon.errors import NeuroDeconError
from neurodecon.metrics import (
    METRIC_KEYS,
    data_range_of,
    evaluate,
    normalize_pair,
    nrmse,
    pearson,
    psnr,
    rmse,
    ssim,
)


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(0)
    v = ndi.gaussian_filter(rng.random((16, 48, 48)), 2.0)
    return ((v - v.min()) / np.ptp(v)).astype(np.float32)


def test_psnr_rmse_nrmse_pearson_match_their_formulas(volume):
    rng = np.random.default_rng(1)
    pred = volume + 0.05 * rng.standard_normal(volume.shape).astype(np.float32)
    mse = np.mean((pred.astype(np.float64) - volume) ** 2)
    assert psnr(pred, volume, data_range=1.0) == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-5)
    assert rmse(pred, volume) == pytest.approx(np.sqrt(mse), rel=1e-6)
    assert nrmse(pred, volume) == pytest.approx(np.sqrt(mse) / np.ptp(volume), rel=1e-6)
    assert pearson(pred, volume) == pytest.approx(
        np.corrcoef(pred.ravel(), volume.ravel())[0, 1], rel=1e-6
    )


def test_ssim_is_one_for_identity_and_falls_with_noise(volume):
    rng = np.random.default_rng(2)
    assert ssim(volume, volume, data_range=1.0) == pytest.approx(1.0)
    scores = [
        ssim(
            volume + s * rng.standard_normal(volume.shape).astype(np.float32),
            volume,
            data_range=1.0,
        )
        for s in (0.01, 0.05, 0.2)
    ]
    assert scores[0] > scores[1] > scores[2]


def test_ssim_3d_agrees_with_skimage_and_handles_thin_stacks(volume):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    pred = volume + 0.05 * rng.standard_normal(volume.shape).astype(np.float32)
    assert ssim(pred, volume, data_range=1.0) == pytest.approx(
        structural_similarity(
            volume.astype(np.float64), pred.astype(np.float64), data_range=1.0, win_size=7
        ),
        rel=1e-4,
    )
    thin = ssim(pred[:2], volume[:2], data_range=1.0)  # < 3 planes: mean of 2D SSIMs
    want = np.mean([structural_similarity(volume[i], pred[i], data_range=1.0) for i in range(2)])
    assert thin == pytest.approx(want, rel=1e-6)


def test_affine_normalisation_forgives_gain_and_offset(volume):
    rng = np.random.default_rng(4)
    truth = volume * 1000 + 50
    pred = 0.02 * (volume + 0.02 * rng.standard_normal(volume.shape).astype(np.float32)) - 3
    p, t = normalize_pair(pred, truth, "affine")
    lo, hi = np.percentile(truth, (1, 99.8))
    np.testing.assert_allclose(t, (truth - lo) / (hi - lo), atol=1e-5)
    # least squares: the residual is orthogonal to 1 and to pred
    a, b = np.polyfit(pred.ravel().astype(np.float64), t.ravel().astype(np.float64), 1)
    np.testing.assert_allclose(p, a * pred + b, atol=1e-4)
    raw = psnr(pred, truth, data_range=np.ptp(truth))
    assert psnr(p, t, data_range=data_range_of(t, "affine")) > raw + 20


def test_percentile_and_none_normalisation(volume):
    p, t = normalize_pair(volume * 7 + 1, volume, "percentile")
    np.testing.assert_allclose(p, t, atol=1e-5)
    assert np.percentile(t, 1) == pytest.approx(0, abs=1e-6)
    assert np.percentile(t, 99.8) == pytest.approx(1, abs=1e-5)
    assert t.max() > 1  # kept, not clipped
    p, t = normalize_pair(volume * 7, volume, "none")
    np.testing.assert_array_equal(p, volume * 7)
    assert data_range_of(t, "none") == pytest.approx(np.ptp(volume))


def test_sparse_truth_uses_min_max_instead_of_percentiles():
    truth = np.zeros((8, 32, 32), np.float32)
    truth[4, 16, 16] = 5.0  # one bead: percentiles 1 and 99.8 are both 0
    _, t = normalize_pair(truth, truth, "percentile")
    assert t.max() == pytest.approx(1.0)


def test_shape_mismatch_and_unknown_mode_are_user_errors(volume):
    with pytest.raises(NeuroDeconError, match="differs from ground-truth shape"):
        psnr(volume, volume[:-1])
    with pytest.raises(NeuroDeconError, match="unknown normalization"):
        normalize_pair(volume, volume, "zscore")
    with pytest.raises(NeuroDeconError, match="constant"):
        normalize_pair(volume, np.ones_like(volume), "affine")


def test_evaluate_keys_types_and_ranking(volume):
    rng = np.random.default_rng(5)
    noisy = [volume + s * rng.standard_normal(volume.shape).astype(np.float32) for s in (0.02, 0.1)]
    good, bad = (evaluate(n, volume, voxel_size_um=(0.3, 0.1, 0.1)) for n in noisy)
    assert set(good) == set(METRIC_KEYS)
    assert all(type(v) is float for v in good.values())
    json.dumps({k: v for k, v in good.items() if np.isfinite(v)}, allow_nan=False)
    assert good["psnr"] > bad["psnr"] and good["ssim"] > bad["ssim"]
    assert good["nrmse"] < bad["nrmse"] and good["pearson"] > bad["pearson"]
    assert good["decorr_xy_snr"] > bad["decorr_xy_snr"]
    no_ref = evaluate(noisy[0], voxel_size_um=(0.3, 0.1, 0.1))
    assert "psnr" not in no_ref and "decorr_xz_resolution_um" in no_ref
    assert no_ref["decorr_xz_resolution_um"] == pytest.approx(0.6 / no_ref["decorr_xz_kc"])


def test_evaluate_reads_voxel_size_from_image_and_reports_progress(volume):
    from neurodecon.io import Image

    calls = []
    out = evaluate(Image(volume, (0.5, 0.3, 0.2)), progress=lambda d, t, m: calls.append((d, t)))
    assert out["decorr_xy_resolution_um"] == pytest.approx(0.4 / out["decorr_xy_kc"])  # along x
    assert out["decorr_yz_resolution_um"] == pytest.approx(1.0 / out["decorr_yz_kc"])  # along z
    assert calls[-1] == (4, 4)


def test_evaluate_rejects_non_3d_and_mismatched_input(volume):
    with pytest.raises(NeuroDeconError, match="3D"):
        evaluate(volume[0])
    with pytest.raises(NeuroDeconError, match="shape"):
        evaluate(volume, volume[:, :-1])


# ---- CLI on real data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pollen(shared_data):
    d = shared_data / "sdeconv"
    if not (d / "pollen.tif").exists():
        missing_data("sdeconv pollen data absent")
    return d


def test_cli_evaluate_table_on_pollen(run_cli, pollen):
    code, out, err = run_cli(
        "evaluate",
        pollen / "pollen_poisson_noise_blurred.tif",
        "--truth",
        pollen / "pollen.tif",
        "--voxel-size",
        "1",
        "1",
        "1",
    )
    assert code == 0, err
    for key in METRIC_KEYS:
        assert key in out


def test_cli_evaluate_json_on_pollen(run_cli, pollen, tmp_path):
    import tifffile

    truth = tifffile.imread(pollen / "pollen.tif").astype(np.float32)
    sharper = tmp_path / "less_blurred.tif"
    tifffile.imwrite(sharper, ndi.gaussian_filter(truth, 0.5))
    scores = {}
    for name in ("pollen_poisson_noise_blurred.tif", sharper):
        code, out, err = run_cli(
            "evaluate",
            pollen / name,
            "--truth",
            pollen / "pollen.tif",
            "--json",
            "--normalization",
            "percentile",
        )
        assert code == 0, err
        doc = json.loads(out)
        assert doc["normalization"] == "percentile"
        scores[str(name)] = doc["metrics"]
    blurred, better = scores["pollen_poisson_noise_blurred.tif"], scores[str(sharper)]
    assert better["psnr"] > blurred["psnr"] and better["ssim"] > blurred["ssim"]
    assert 20 < blurred["psnr"] < 40 and 0.5 < blurred["pearson"] < 1


def test_cli_evaluate_without_truth_json(run_cli, pollen):
    code, out, _ = run_cli(
        "evaluate", pollen / "pollen.tif", "--json", "--voxel-size", "0.5", "0.1", "0.1"
    )
    assert code == 0
    m = json.loads(out)["metrics"]
    assert "psnr" not in m
    assert m["decorr_xy_resolution_um"] == pytest.approx(0.2 / m["decorr_xy_kc"])


def test_cli_evaluate_shape_mismatch_is_one_line_error(run_cli, pollen):
    bars = pollen.parent / "flowdec" / "bars-25pct" / "actual.tif"  # 32×64×64 vs 32×256×256
    if not bars.exists():
        missing_data("flowdec bars data absent")
    code, out, err = run_cli(
        "evaluate", pollen / "pollen.tif", "--truth", bars, "--voxel-size", "1", "1", "1"
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "differs" in lines[0]


def test_docs_python_example_runs(capsys):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/metrics.md", "exec"), {})
    assert "[0.8, 0.3, 0.3]" in capsys.readouterr().out  # the Gaussian PSF's FWHM, as the doc says


def test_cli_evaluate_rejects_multichannel_stack(run_cli, tmp_path):
    import tifffile

    path = tmp_path / "two_channels.tif"
    data = np.random.default_rng(0).random((4, 2, 16, 16)).astype(np.float32)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})
    code, _, err = run_cli("evaluate", path, "--voxel-size", "1", "1", "1")
    assert code == 2
    assert (
        err.strip().startswith(f"error: {path}")
        and "3D" in err
        and len(err.strip().splitlines()) == 1
    )
