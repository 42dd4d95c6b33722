"""Physics-aware variant of the NeuroDecon network: input [raw, RL_K(raw)], residual on RL_K."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import GAUSS_PSF_ARGS, TINY_DATA_ARGS
from conftest import gaussian_kernel as _gaussian_kernel

from neurodecon.learn import PHYSICS_PSF_FILE as PSF_FILE
from neurodecon.learn import (
    build_pool,
    center_convolve,
    load_model,
    physics_channel,
    predict,
    robust_range,
    sample_batch,
    train,
)

VS = (0.1, 0.05, 0.05)


def gaussian_kernel(sigma=(1.5, 1.0, 1.0), radius=(4, 4, 4)) -> np.ndarray:
    return _gaussian_kernel(sigma, radius)


TINY = {
    "net": {"base_channels": 4, "depth": 1},
    "patch": (8, 16, 16),
    "pool_shape": (16, 32, 32),
    "n_phantoms": 2,
    "phantoms": ("ellipsoids",),
    "batch": 2,
    "val_crops": 2,
    "photons": (1000.0,),
    "seed": 3,
    "device": "cpu",
    "bf16": False,
    "warmup_steps": 1,
    "physics": "rl",
    "physics_method": "rl",  # compared below with plain RL (the default is rl-accel)
    "physics_iterations": 3,
    "physics_draws": 1,
    "voxel_size_um": VS,
}


@pytest.fixture(scope="module")
def phys_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("phys") / "model"
    train({**TINY, "steps": 2, "val_every": 2}, output_dir=out, psf=gaussian_kernel())
    return out


def _blurred(seed=0, shape=(12, 40, 40)):
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[tuple(rng.integers(0, n, 40) for n in shape)] = rng.uniform(50, 200, 40)
    return rng.poisson(center_convolve(truth, gaussian_kernel()) + 2.0).astype(np.float32)


@pytest.mark.parametrize("background", [None, 2.0])
def test_untrained_variant_reproduces_rl_k(tmp_path, background):
    """Output projection starts at zero: before any update the prediction is RL_K itself,
    computed with the model's background (default "auto", else the number given)."""
    extra = {} if background is None else {"physics_background": background}
    out = train(
        {**TINY, **extra, "steps": 1, "val_every": 1, "lr": 0.0, "weight_decay": 0.0},
        output_dir=tmp_path / "m",
        psf=gaussian_kernel(),
    )
    model = load_model(out)
    assert model.net.cfg.in_channels == 2 and model.net.cfg.residual_channel == 1
    assert float(model.net.tail.weight.detach().abs().max()) == 0.0
    bg = "auto" if background is None else background
    assert model.physics["background"] == bg
    img = _blurred()
    rl = physics_channel(img, gaussian_kernel(), method="rl", iterations=3, background=bg)
    rl0 = physics_channel(img, gaussian_kernel(), method="rl", iterations=3, background=0.0)
    assert not np.allclose(rl, img, atol=1.0)  # RL_K is not the identity on this image
    assert not np.allclose(rl, rl0, atol=1e-3 * float(rl.max()))  # the background matters here
    pred = predict(model, img, voxel_size_um=VS, device="cpu")
    np.testing.assert_allclose(pred, rl, atol=1e-4 * float(rl.max()))


def test_model_without_background_key_uses_zero(tmp_path):
    """Model folders written before ``physics_background`` existed keep RL_K with background 0."""
    out = train(
        {**TINY, "steps": 1, "val_every": 1, "lr": 0.0, "weight_decay": 0.0},
        output_dir=tmp_path / "m",
        psf=gaussian_kernel(),
    )
    cfg = json.loads((out / "config.json").read_text())
    del cfg["physics"]["background"]
    cfg["training"]["physics"].pop("background", None)
    (out / "config.json").write_text(json.dumps(cfg))
    model = load_model(out)
    img = _blurred(4)
    rl0 = physics_channel(img, gaussian_kernel(), method="rl", iterations=3, background=0.0)
    pred = predict(model, img, voxel_size_um=VS, device="cpu")
    np.testing.assert_allclose(pred, rl0, atol=1e-4 * float(rl0.max()))


@pytest.mark.parametrize("bad", ["dark", -1.0, float("nan"), True])
def test_bad_physics_background_is_a_user_error(bad):
    from neurodecon.errors import NeuroDeconError
    from neurodecon.learn import TrainConfig

    with pytest.raises(NeuroDeconError, match="physics_background"):
        TrainConfig.from_dict(TINY, physics_background=bad)


def test_rl_channel_is_richardson_lucy():
    """The physics channel agrees with a direct numpy Richardson–Lucy (same K, same PSF)."""
    img = _blurred(1, (16, 24, 24))
    k = gaussian_kernel()
    est = np.full_like(img, img.mean())
    for _ in range(3):
        ratio = img / np.maximum(center_convolve(est, k), 1e-12)
        est = est * center_convolve(ratio, k[::-1, ::-1, ::-1].copy())
    got = physics_channel(img, k, method="rl", iterations=3)
    inner = (slice(5, -5), slice(5, -5), slice(5, -5))  # boundary handling may differ
    rel = np.abs(got[inner] - est[inner]).max() / est[inner].max()
    assert rel < 0.05, rel


def test_model_dir_keeps_the_rl_kernel_and_settings(phys_model):
    cfg = json.loads((phys_model / "config.json").read_text())
    assert cfg["physics"]["method"] == "rl" and cfg["physics"]["iterations"] == 3
    assert cfg["physics"]["background"] == cfg["physics"]["training_background"] == "auto"
    assert cfg["physics"]["psf_file"] == PSF_FILE
    assert "rl_3" in cfg["validation"]["input_baseline"]
    model = load_model(phys_model)
    k = gaussian_kernel()
    np.testing.assert_allclose(model.physics_psf, k / k.sum(), rtol=1e-6)
    (phys_model / PSF_FILE).rename(phys_model / "moved.npy")
    try:
        from neurodecon.errors import NeuroDeconError

        with pytest.raises(NeuroDeconError, match="missing"):
            load_model(phys_model)
    finally:
        (phys_model / "moved.npy").rename(phys_model / PSF_FILE)


def test_tiled_equals_untiled(phys_model):
    model = load_model(phys_model)
    with torch.no_grad():  # make the network non-trivial so tiles could show seams
        model.net.tail.weight.normal_(0, 0.5)
    img = _blurred(2, (12, 40, 40))
    whole = predict(model, img, voxel_size_um=VS, tile_shape=(16, 48, 48), device="cpu")
    tiled = predict(model, img, voxel_size_um=VS, tile_shape=(8, 16, 16), halo=16, device="cpu")
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * float(np.abs(whole).max()))


def test_pool_realisations_pair_raw_with_its_rl():
    k = gaussian_kernel()
    src = [np.random.default_rng(s).uniform(0, 1, (16, 32, 32)).astype(np.float32) for s in (0, 1)]
    calls = []

    def fn(v, bg):
        calls.append((v.shape, bg))
        return physics_channel(v, k, method="rl", iterations=2, background=bg)

    pool = build_pool(
        src,
        k,
        None,
        photons=(100.0, 1000.0),
        read_noise=1.0,
        seed=0,
        norm_percentiles=(1.0, 99.8),
        backgrounds=(0.0, 5.0),
        physics=fn,
        physics_draws=2,
    )
    assert len(calls) == 2 * 2 * 2 and all(c[0] == (16, 32, 32) for c in calls)  # whole volumes
    # backgrounds are taken in turn and handed over in intensity units (counts / photons)
    assert [c[1] for c in calls[:4]] == [0.0, 5.0 / 100, 0.0, 5.0 / 1000]
    # ... shifted by one per volume, so every photon level meets every background across volumes
    assert [c[1] for c in calls[4:]] == [5.0 / 100, 0.0, 5.0 / 1000, 0.0]
    assert pool.real_levels == [0, 0, 1, 1]
    np.testing.assert_allclose(pool.rl[1][2], fn(pool.noisy[1][2], 5.0 / 1000), rtol=1e-5)
    # the background stays in the input: the realisation with 5 counts is brighter on average
    assert pool.noisy[0][1].mean() - pool.noisy[0][0].mean() == pytest.approx(5.0 / 100, abs=0.01)
    assert robust_range(pool.noisy[0][0]) == pool.real_norms[0][0]
    xb, yb = sample_batch(pool, [0, 1], 3, (8, 16, 16), np.random.default_rng(0))
    assert xb.shape == (3, 2, 8, 16, 16) and yb.shape == (3, 1, 8, 16, 16)


def test_pool_fits_the_rl_runs_into_its_time_budget(messages):
    """A slow RL_K: every volume gets fewer realisations, the photon levels taken in turn."""
    import time

    k = gaussian_kernel()
    src = [np.random.default_rng(s).uniform(0, 1, (8, 16, 16)).astype(np.float32) for s in range(4)]
    calls = []

    def slow(v, bg):
        calls.append(bg)
        time.sleep(0.05)
        return v

    args = dict(photons=(10.0, 100.0, 1000.0), read_noise=1.0, seed=0, norm_percentiles=(1.0, 99.8))
    pool = build_pool(src, k, None, physics=slow, physics_draws=2, physics_budget_s=0.45, **args)
    # 6 realisations per volume would take 4 × 6 × 0.05 s = 1.2 s: 2 per volume fit in 0.45 s
    assert [len(r) for r in pool.rl] == [2] * 4
    assert len(pool.real_levels) == 2 and len(calls) == 8
    assert any("realisation" in m for m in messages)
    xb, _ = sample_batch(pool, [0, 1, 2, 3], 4, (8, 16, 16), np.random.default_rng(0))
    assert xb.shape == (4, 2, 8, 16, 16)
    calls.clear()
    build_pool(src, k, None, physics=slow, physics_draws=2, physics_budget_s=60, **args)
    assert len(calls) == 4 * 6  # within the budget nothing is dropped


def test_bead_kernels_without_psf_is_a_user_error(tmp_path):
    from neurodecon.errors import NeuroDeconError

    k = gaussian_kernel()
    with pytest.raises(NeuroDeconError, match="needs the PSF"):
        train(
            {**TINY, "steps": 1, "bead_target": "bead"},
            output_dir=tmp_path / "m",
            blurred_bead=k,
            ideal_bead=k,
        )


def test_cli_train_physics_then_deconvolve(tmp_path, run_cli):
    from neurodecon.io import read, write

    model_dir = tmp_path / "model"
    code, out, err = run_cli(
        "train",
        *GAUSS_PSF_ARGS,
        *TINY_DATA_ARGS,
        "--steps",
        "2",
        "--val-every",
        "2",
        "--base-channels",
        "4",
        "--net-depth",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--physics-input",
        "rl",
        "--physics-iterations",
        "2",
        "--physics-method",
        "rl-accel",
        "--physics-background",
        "1.5",
        "-o",
        model_dir,
    )
    assert code == 0, err
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["physics"]["method"] == "rl-accel" and cfg["physics"]["iterations"] == 2
    # 1.5 describes the data to deconvolve; the simulated pool has background 0 and uses it
    assert cfg["physics"]["background"] == 1.5 and cfg["physics"]["training_background"].startswith(
        "the known"
    )
    assert (model_dir / PSF_FILE).is_file()
    img = _blurred(3, (12, 20, 20))
    write(tmp_path / "in.tif", img, voxel_size_um=VS)
    code, out, err = run_cli(
        "deconvolve",
        tmp_path / "in.tif",
        "--model",
        model_dir,
        "-o",
        tmp_path / "out.tif",
        "--device",
        "cpu",
    )
    assert code == 0, err
    res = read(tmp_path / "out.tif").data
    assert res.shape == img.shape and np.all(np.isfinite(res))


def test_auto_iterations_follow_the_microscope(tmp_path):
    """``physics_iterations="auto"`` searches K on the microscope's own simulated data: a broad
    kernel at many photons needs more RL iterations than a narrow one at few (the count that
    matches the target best), and the chosen K is what the model folder records and uses."""
    from neurodecon.learn import TrainConfig
    from neurodecon.learn._physics import AUTO_MAX_ITERATIONS, choose_iterations
    from neurodecon.synth import phantom

    vols = [phantom("ellipsoids", shape=(16, 40, 40), voxel_size_um=VS, seed=s) for s in (0, 1)]
    vols = [v / v.max() for v in vols]

    def chosen(kernel, photons):
        cfg = TrainConfig.from_dict({**TINY, "photons": (photons,), "physics_iterations": "auto"})
        cfg = replace(cfg, noise=cfg.noise.resolved(None))
        return choose_iterations(cfg, kernel, vols, kernel, None)

    broad, rec = chosen(gaussian_kernel((2.5, 2.0, 2.0), (6, 6, 6)), 5000.0)
    narrow, _ = chosen(gaussian_kernel((1.0, 0.6, 0.6), (3, 3, 3)), 30.0)
    assert 1 <= narrow < broad <= AUTO_MAX_ITERATIONS, (narrow, broad)
    assert rec["psnr_db_at_k"] >= rec["psnr_db_at_1"]

    out = tmp_path / "model"
    train(
        {**TINY, "steps": 1, "val_every": 1, "physics_iterations": "auto"},
        output_dir=out,
        psf=gaussian_kernel(),
    )
    cfg = json.loads((out / "config.json").read_text())
    k = cfg["physics"]["iterations"]
    assert isinstance(k, int) and 1 <= k <= AUTO_MAX_ITERATIONS
    assert (
        cfg["physics"]["iterations_auto"]["psnr_db_at_k"]
        >= cfg["physics"]["iterations_auto"]["psnr_db_at_1"]
    )
    assert f"rl_{k}" in cfg["validation"]["input_baseline"]


def test_spread_is_the_flip_ensemble_computed_by_hand(phys_model):
    """``predict_with_spread`` = mean and std of ``predict`` on the flipped inputs, flipped back
    (independently computed here), with the identity first among the flips."""
    from neurodecon.learn import augmentations, predict_with_spread

    flips = augmentations(phys_model)
    assert flips[0] == () and len(flips) == len(set(flips)) >= 4
    img = _blurred(5)
    mean, spread = predict_with_spread(phys_model, img, voxel_size_um=VS, device="cpu")
    runs = [
        np.flip(predict(phys_model, np.ascontiguousarray(np.flip(img, f)), device="cpu"), f)
        for f in flips
    ]
    scale = float(np.max(runs))
    np.testing.assert_allclose(mean, np.mean(runs, axis=0), atol=1e-4 * scale)
    np.testing.assert_allclose(spread, np.std(runs, axis=0), atol=1e-4 * scale)
    assert spread.min() >= 0 and spread.max() > 0 and mean.min() >= 0
