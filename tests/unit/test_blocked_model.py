"""Trained networks block by block (``deconvolve_blocked(..., model=...)``): blocked == predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import gaussian_kernel

import neurodecon as nd
from neurodecon.blocked import deconvolve_blocked, incomplete_path
from neurodecon.classical import estimate_background
from neurodecon.errors import NeuroDeconError
from neurodecon.learn import Model, build_network, center_convolve, predict, robust_range

VS = (0.1, 0.05, 0.05)
#: 2×2×2 blocks of the test volume, each with inner faces
OPTS = {"block": (20, 40, 40), "voxel_size_um": VS, "device": "cpu"}
#: tiny networks of each architecture tested (random weights: every voxel of the receptive
#: field matters, which a trained near-identity network would hide)
NETS = {
    "unet": {"network": {"base_channels": 4, "depth": 1}},
    "rln": {"arch_options": {}},
}


def _model(arch: str = "unet", physics: str | None = None, seed: int = 0) -> Model:
    torch.manual_seed(seed)
    cfg = {"arch": arch, **{k: dict(v) for k, v in NETS[arch].items()}}
    if physics:
        cfg["network"].update(in_channels=2, residual_channel=1)
    net = build_network(cfg).eval()
    with torch.no_grad():  # the residual tail starts at zero: make the network non-trivial
        for p in net.parameters():
            if p.dim() > 1 and float(p.abs().max()) == 0.0:
                p.normal_(0, 0.3)
    config = {**cfg, "voxel_size_um": list(VS), "inference": {"halo": 8},
              "normalization": {"percentiles": [1.0, 99.8]}}  # fmt: skip
    psf = None
    if physics:
        psf = gaussian_kernel((1.5, 1.0, 1.0), (4, 4, 4))
        config["physics"] = {"method": physics, "iterations": 10, "background": "auto",
                             "psf_file": "physics_psf.npy"}  # fmt: skip
    return Model(net, config, None, psf)


@pytest.fixture(autouse=True)
def _small_tiles(monkeypatch):
    """Tiles smaller than the test volume, so that predict itself tiles it (as on real data)."""
    from neurodecon.learn import _predict

    monkeypatch.setattr(_predict, "DEFAULT_TILE", (24, 48, 48))


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 80, 80), np.float32)
    truth[tuple(rng.integers(0, n, 300) for n in truth.shape)] = rng.uniform(50, 300, 300)
    blurred = center_convolve(truth, gaussian_kernel((1.5, 1.0, 1.0), (4, 4, 4)))
    return rng.poisson(blurred + 5.0).astype(np.float32)


def _max_rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / (ref.max() - ref.min()))


@pytest.mark.parametrize(
    ("arch", "physics"), [("unet", None), ("unet", "rl"), ("unet", "rl-accel"), ("rln", None)]
)
def test_blocked_model_equals_whole_volume_predict(volume, tmp_path, arch, physics):
    """Within 1e-4 of the output range; normalisation and RL_K settings decided once, recorded."""
    model = _model(arch, physics)
    whole = predict(model, volume, voxel_size_um=VS, device="cpu")
    run = deconvolve_blocked(volume, tmp_path / "o.ome.zarr", model=model, **OPTS)
    out = nd.read(run.output)
    assert out.voxel_size_um == pytest.approx(VS) and len(run.plan.blocks) == 8
    assert _max_rel(out.data, whole) < 1e-4
    # the halo is RL_K's (the classical rule) plus the network's context, on its size multiple
    m = model.net.multiple
    assert all(h % m == 0 and h >= 8 + m for h in run.plan.halo)
    assert all(h < n for h, n in zip(run.plan.halo, (40, 80, 80), strict=True))  # a real halo
    p = run.parameters
    norm = robust_range(volume, (1.0, 99.8))
    assert p["frames"][0]["normalization"] == pytest.approx([norm.low, norm.high])
    assert p["global_decisions"] == "whole volume" and p["arch"] == arch
    if physics:
        assert p["frames"][0]["physics_background"] == pytest.approx(estimate_background(volume))
        assert p["physics"]["iterations"] == 10
        assert len(p["frames"][0].get("physics_acceleration", [0] * 10)) == 10
    else:
        assert p["physics"] is None


def test_a_halo_too_small_shows_seams(volume, tmp_path):
    """The comparison above can fail: 2 voxels of halo differ visibly."""
    model = _model("unet", "rl")
    whole = predict(model, volume, voxel_size_um=VS, device="cpu")
    run = deconvolve_blocked(volume, tmp_path / "s.ome.zarr", model=model, halo=(2, 2, 2),
                             **OPTS)  # fmt: skip
    assert _max_rel(nd.read(run.output).data, whole) > 1e-2


def test_rl_accel_blocks_replay_the_volumes_factors(volume, tmp_path, monkeypatch):
    """rl-accel's α sums over the grid: blocks computing their own differ far more than 1e-4."""
    from neurodecon.blocked import _model_runner

    model = _model("unet", "rl-accel")
    whole = predict(model, volume, voxel_size_um=VS, device="cpu")
    monkeypatch.setattr(_model_runner, "_acceleration", lambda runner, *a: "not replayed")
    run = deconvolve_blocked(volume, tmp_path / "a.ome.zarr", model=model, **OPTS)
    assert _max_rel(nd.read(run.output).data, whole) > 3e-4


def test_failed_block_resumes_to_the_same_voxels(volume, tmp_path, monkeypatch):
    from neurodecon.blocked import ModelRunner

    model = _model("unet", None)
    opts = {"model": model, **OPTS}
    ref = deconvolve_blocked(volume, tmp_path / "ref.ome.zarr", **opts)
    original = ModelRunner.__call__
    calls = []

    def failing(self, vol):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("simulated lost disk")
        return original(self, vol)

    out = tmp_path / "r.ome.zarr"
    monkeypatch.setattr(ModelRunner, "__call__", failing)
    with pytest.raises(RuntimeError, match="failed 3 times"):
        deconvolve_blocked(volume, out, **opts)
    monkeypatch.setattr(ModelRunner, "__call__", original)
    assert (
        not out.exists() and len(list((incomplete_path(out) / ".neurodecon_done").iterdir())) == 3
    )
    with pytest.raises(NeuroDeconError, match="other parameters"):  # another model: refused
        deconvolve_blocked(volume, out, resume=True, **{**opts, "model": _model(seed=1)})
    run = deconvolve_blocked(volume, out, resume=True, **opts)
    assert (run.blocks_skipped, run.blocks_run) == (3, 5)
    np.testing.assert_array_equal(nd.read(out).data, nd.read(ref.output).data)


def test_each_channel_gets_its_own_normalisation(volume, tmp_path):
    """A (C, Z, Y, X) stack: every channel normalised on its own, as predict does."""
    model = _model("unet", None)
    stack = np.stack([volume[:24, :48, :48], 10 * volume[16:, 32:, 32:]])
    whole = predict(model, stack, voxel_size_um=VS, device="cpu")
    run = deconvolve_blocked(stack, tmp_path / "c.ome.zarr", model=model, **OPTS)
    assert _max_rel(nd.read(run.output).data, whole) < 1e-4
    lows = [f["normalization"][0] for f in run.parameters["frames"]]
    assert lows[1] == pytest.approx(10 * lows[0], rel=0.2)


def test_streamed_decisions_of_a_large_volume_are_the_whole_volume_s(volume, tmp_path, monkeypatch):
    """Above EXACT_BYTES the frame is read once in tiles: with every voxel on the lattice, the
    normalisation, RL_K's background "auto" and flat level are predict's, so is the output."""
    from neurodecon.blocked import _summary

    monkeypatch.setattr(_summary, "EXACT_BYTES", 1 << 16)
    monkeypatch.setattr(_summary, "TILE_BYTES", 4 * 12 * 80 * 80)  # 4 tiles of 12 planes
    monkeypatch.setattr(_summary, "SAMPLES", volume.size)
    model = _model("unet", "rl")
    whole = predict(model, volume, voxel_size_um=VS, device="cpu")
    run = deconvolve_blocked(volume, tmp_path / "k.ome.zarr", model=model, **OPTS)
    frame = run.parameters["frames"][0]
    assert "one streaming pass" in run.parameters["global_decisions"]
    assert frame["physics_background"] == pytest.approx(estimate_background(volume), rel=1e-5)
    norm = robust_range(volume, (1.0, 99.8))
    assert frame["normalization"] == pytest.approx([norm.low, norm.high], rel=1e-6)
    assert _max_rel(nd.read(run.output).data, whole) < 1e-4


def test_sampled_decisions_are_close(volume, tmp_path, monkeypatch):
    """With a lattice of 1/64 of the voxels the decisions stay close to the whole volume's."""
    from neurodecon.blocked import _summary

    monkeypatch.setattr(_summary, "EXACT_BYTES", 1 << 16)
    monkeypatch.setattr(_summary, "SAMPLES", volume.size // 64)
    model = _model("unet", "rl")
    run = deconvolve_blocked(volume, tmp_path / "s.ome.zarr", model=model, **OPTS)
    frame = run.parameters["frames"][0]
    kept = _summary.lattice_strides(volume.shape, volume.size // 64)
    assert kept == (4, 4, 4)  # 10 × 20 × 20 voxels of the frame
    assert "(4000 voxels sampled)" in run.parameters["global_decisions"]
    b = frame["physics_background"]
    assert b == pytest.approx(estimate_background(volume), rel=0.05)
    # the mean is summed over every voxel, sampled or not
    assert frame["physics_flat_level"] == pytest.approx(volume.mean(dtype=np.float64) - b, rel=1e-5)
    norm = robust_range(volume, (1.0, 99.8))
    assert frame["normalization"] == pytest.approx([norm.low, norm.high], rel=0.1)


def test_model_requests_refused_in_one_line(volume, tmp_path, monkeypatch):
    import neurodecon.learn

    with pytest.raises(NeuroDeconError, match="either a PSF or a trained model"):
        deconvolve_blocked(volume, tmp_path / "x.ome.zarr", gaussian_kernel(), model="default")
    monkeypatch.setattr(neurodecon.learn, "is_foreign_package", lambda path: True)
    with pytest.raises(NeuroDeconError, match="cannot run in blocks"):
        deconvolve_blocked(volume, tmp_path / "x.ome.zarr", model=tmp_path / "pkg.zip")
    assert not incomplete_path(tmp_path / "x.ome.zarr").exists()


@pytest.mark.slow
def test_two_worker_cluster_loads_the_model_directory(volume, tmp_path):
    """On a Dask cluster every worker loads the model directory: the in-process result."""
    pytest.importorskip("distributed", reason="the cluster extra is not installed")
    from neurodecon.learn import save_model

    model = _model("unet", "rl-accel")
    folder = save_model(tmp_path / "m", model.net, model.config, physics_psf=model.physics_psf)
    src = tmp_path / "in.ome.zarr"
    nd.write(src, nd.io.Image(volume, axes="ZYX", voxel_size_um=VS))
    ref = deconvolve_blocked(src, tmp_path / "a.ome.zarr", model=folder, **OPTS)
    run = deconvolve_blocked(src, tmp_path / "c.ome.zarr", model=folder, workers=2, **OPTS)
    assert run.parameters["model"] == str(folder)
    a, b = nd.read(run.output).data, nd.read(ref.output).data
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(b.max() - b.min()))


def test_deconvolver_records_and_replays_rl_accel_factors(volume):
    """``Deconvolver.acceleration``: an empty list is filled with the α computed; given, they
    are used (the same result), and other factors give another result."""
    from neurodecon.classical import Deconvolver

    psf, vol = gaussian_kernel(), volume[:16, :32, :32]
    dec = Deconvolver(psf, vol.shape, method="rl-accel", device="cpu")
    plain = dec(vol, iterations=6, background=5.0)
    dec.acceleration = []
    recorded = dec(vol, iterations=6, background=5.0)
    alphas = list(dec.acceleration)
    assert len(alphas) == 6 and alphas[0] == 0.0 and max(alphas) > 0.1
    np.testing.assert_array_equal(recorded, plain)
    dec.acceleration = alphas
    np.testing.assert_allclose(dec(vol, iterations=6, background=5.0), plain, rtol=1e-6)
    dec.acceleration = [0.0] + [0.9] * 5
    assert not np.allclose(dec(vol, iterations=6, background=5.0), plain, rtol=1e-3)
