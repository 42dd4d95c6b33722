"""`neurodecon train --arch rln|rcan|debcr` end to end: train, resume, info, deconvolve, compare."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GAUSS_PSF_ARGS, TINY_DATA_ARGS

#: small settings of each architecture (RLN's default is small already)
OPTIONS = {
    "rln": [],
    "rcan": ["--arch-options", "channels=8,groups=2,blocks=1,reduction=4"],
    "debcr": ["--arch-options", "channels=4,scales=2,levels=1"],
}
RUN = "--threads 1 --device cpu --val-every 2 --checkpoint-every 2 --batch 2".split()


@pytest.mark.parametrize("arch", ["rln", "rcan", "debcr"])
def test_cli_train_arch_resume_info_deconvolve_compare(tmp_path, run_cli, arch):
    from neurodecon.io import read, write
    from neurodecon.learn import train
    from neurodecon.psf import make_psf

    vs = (0.1, 0.05, 0.05)
    psf = make_psf("gaussian", shape=(9, 9, 9), voxel_size_um=vs, fwhm_um=(0.3, 0.15, 0.15))
    model_dir = tmp_path / "m"
    # a run cut after 2 of 4 steps (as if interrupted), then resumed from the command line
    arch_options = {
        "rln": {},
        "rcan": {"channels": 8, "groups": 2, "blocks": 1, "reduction": 4},
        "debcr": {"channels": 4, "scales": 2, "levels": 1},
    }[arch]
    cfg = {
        "arch": arch,
        "arch_options": arch_options,
        "phantoms": ("ellipsoids",),
        "n_phantoms": 2,
        "pool_shape": (16, 32, 32),
        "patch": (8, 16, 16),
        "steps": 4,
        "val_every": 2,
        "checkpoint_every": 2,
        "batch": 2,
        "threads": 1,
        "device": "cpu",
    }
    train(cfg, output_dir=model_dir, psf=psf, max_steps=2)
    assert (model_dir / "checkpoint.pt").is_file()
    code, out, err = run_cli(
        "train",
        *GAUSS_PSF_ARGS,
        *TINY_DATA_ARGS,
        *RUN,
        "--steps",
        "4",
        "--arch",
        arch,
        *OPTIONS[arch],
        "--resume",
        "-o",
        model_dir,
    )
    assert code == 0, err
    cfg_json = json.loads((model_dir / "config.json").read_text())
    assert cfg_json["arch"] == arch and cfg_json["steps_done"] == 4
    assert cfg_json["network"]["arch"] == arch

    code, out, err = run_cli("info", model_dir)
    assert code == 0, err
    assert f"arch        {arch}" in out
    assert f"parameters  {cfg_json['n_parameters']:,}" in out
    code, out, err = run_cli("info", model_dir, "--json")
    info = json.loads(out)
    assert info["arch"] == arch and info["n_parameters"] == cfg_json["n_parameters"]
    assert info["in_channels"] == 1

    img = np.random.default_rng(0).uniform(0, 10, (12, 20, 20)).astype(np.float32)
    write(tmp_path / "in.tif", img, voxel_size_um=vs)
    code, out, err = run_cli(
        "deconvolve", tmp_path / "in.tif", "--model", model_dir, "-o", tmp_path / "out.tif"
    )
    assert code == 0, err
    res = read(tmp_path / "out.tif")
    assert res.data.shape == img.shape and np.isfinite(res.data).all()

    write(tmp_path / "psf.tif", psf, voxel_size_um=vs)
    rep = tmp_path / "rep"
    code, out, err = run_cli(
        "compare",
        tmp_path / "in.tif",
        "--psf",
        tmp_path / "psf.tif",
        "--methods",
        f"rl,model:{model_dir}",
        "--iterations",
        "3",
        "-o",
        rep,
    )
    assert code == 0, err
    summary = json.loads((rep / "metrics.json").read_text())
    row = summary["methods"]["model_m"]
    assert row["status"] == "ok", row.get("error")


def test_cli_train_help_lists_the_architectures(run_cli, capsys):
    with pytest.raises(SystemExit):
        run_cli("train", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--arch {unet,rln,rcan,debcr}" in text and "--arch-options KEY=VALUE,..." in text
    assert "--loss {mae,mse,rln,debcr}" in text


def test_cli_train_arch_errors_are_one_line(tmp_path, run_cli):
    base = ["train", *GAUSS_PSF_ARGS, *TINY_DATA_ARGS, "-o", tmp_path / "x"]
    code, _, err = run_cli(*base, "--arch", "rln", "--physics-input", "rl")
    assert code == 2 and "takes the raw channel only" in err and "Traceback" not in err
    code, _, err = run_cli(*base, "--arch", "rcan", "--arch-options", "width=3")
    assert code == 2 and "unknown rcan option" in err
    with pytest.raises(SystemExit):
        run_cli(*base, "--arch-options", "channels")
