"""``deconvolve --check`` and ``evaluate --raw --psf``: results against their raw data."""

from __future__ import annotations

import json

import numpy as np
import pytest

SIM = (
    "--phantom ellipsoids,tubes --shape 24 64 64 --voxel-size 0.2 0.1 0.1 --model gaussian "
    "--fwhm 0.5 0.25 0.25 --psf-shape 11 11 11 --photons 300 --background 5 --offset 100 "
    "--read-noise 1.5 --seed 2"
).split()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from neurodecon.cli import main

    out = tmp_path_factory.mktemp("check") / "sim"
    assert main(["simulate", *SIM, "-o", str(out)]) == 0
    return out


def test_deconvolve_check_writes_the_map_and_scores(sim, tmp_path, run_cli):
    from neurodecon.io import read

    out = tmp_path / "rl.tif"
    args = ["deconvolve", sim / "image.tif", "--psf", sim / "psf.tif", "--method", "rl"]
    args += ["--iterations", "20", "--device", "cpu", "--check", "-o", out]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert "consistency with the raw data" in stdout
    cmap = read(tmp_path / "rl_consistency.tif")
    scores = json.loads((tmp_path / "rl_consistency.json").read_text())
    assert cmap.shape == read(out).shape and cmap.data.dtype == np.float32
    assert cmap.voxel_size_um == pytest.approx((0.2, 0.1, 0.1))
    assert 0.5 < scores["score"] < 2.0 and "kernel" in scores
    # the sidecars are outputs too: not replaced without --overwrite, checked before any work
    out.unlink()
    code, _, err = run_cli(*args)
    assert code != 0 and "rl_consistency.tif" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_raw_reports_the_truth_as_consistent(sim, tmp_path, run_cli):
    mapped = tmp_path / "map.tif"
    code, stdout, err = run_cli(
        "evaluate",
        sim / "truth.tif",
        "--raw",
        sim / "image.tif",
        "--psf",
        sim / "psf.tif",
        "--map-out",
        mapped,
        "--json",
    )
    assert code == 0, err
    c = json.loads(stdout)["consistency"]
    assert abs(c["score"] - 1) < 0.1 and c["consistent"] and mapped.is_file()


def test_evaluate_raw_flags_a_blurred_result(sim, run_cli):
    """The raw stack itself, as if it were a result, is blurred twice once re-blurred."""
    code, stdout, err = run_cli(
        "evaluate", sim / "image.tif", "--raw", sim / "image.tif", "--psf", sim / "psf.tif"
    )
    assert code == 0, err
    assert "consistency with the raw data" in stdout and "missing" in stdout


def test_evaluate_raw_without_psf_is_one_line(sim, run_cli):
    code, _, err = run_cli("evaluate", sim / "truth.tif", "--raw", sim / "image.tif")
    assert code != 0 and "--psf" in err and len(err.strip().splitlines()) == 1


def test_model_check_and_uncertainty(sim, tmp_path, run_cli):
    """A model's result is checked against the model's own kernel; --uncertainty writes the
    spread over the flips beside the (flip-averaged) result."""
    from neurodecon.io import read

    out = tmp_path / "net.tif"
    code, stdout, err = run_cli(
        "deconvolve", sim / "image.tif", "--model", "default", "--device", "cpu", "--check",
        "--uncertainty", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    scores = json.loads((tmp_path / "net_consistency.json").read_text())
    assert "model default" in scores["kernel"] and np.isfinite(scores["score"])
    spread = read(tmp_path / "net_uncertainty.tif")
    assert spread.shape == read(out).shape and spread.voxel_size_um == pytest.approx(
        (0.2, 0.1, 0.1)
    )
    assert spread.data.min() >= 0 and spread.data.max() > 0


def test_uncertainty_needs_a_network(sim, tmp_path, run_cli):
    code, _, err = run_cli(
        "deconvolve", sim / "image.tif", "--psf", sim / "psf.tif", "--uncertainty",
        "-o", tmp_path / "x.tif",
    )  # fmt: skip
    assert code != 0 and "--uncertainty" in err and len(err.strip().splitlines()) == 1
