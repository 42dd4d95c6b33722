"""The seed papers' networks (RLN, 3D-RCAN, 3D m-rBCR) behind ``arch``: structure, losses,
config defaults, the one ``build_network``, training and resume, tiled inference, CUDA parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_TRAIN, gaussian_kernel

from neurodecon.errors import NeuroDeconError
from neurodecon.learn import (
    RCAN,
    RLN,
    DeBCR,
    DeBCRConfig,
    Model,
    RCANConfig,
    ResUNet,
    TrainConfig,
    build_network,
    count_parameters,
    debcr_loss,
    fourier_l1,
    haar_analysis,
    haar_synthesis,
    load_model,
    lr_factor,
    predict,
    rcan_parameter_count,
    rln_loss,
    rln_parameter_count,
    train,
    z_halving_for,
)

VS = (0.1, 0.05, 0.05)

#: a small configuration of each architecture (the tests' sizes; RLN's default is small)
SMALL = {
    "rln": {},
    "rcan": {"channels": 8, "groups": 2, "blocks": 1, "reduction": 4},
    "debcr": {"channels": 4, "scales": 2, "levels": 1},
}

TINY = {**TINY_TRAIN, "n_phantoms": 3, "seed": 3, "time_limit_min": None}


def _net(arch: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network({"arch": arch, "arch_options": {**SMALL[arch], **options}}).eval()


# ---- structure ------------------------------------------------------------------------------


def test_rln_default_has_about_16000_parameters_as_its_structure_gives():
    n = count_parameters(build_network({"arch": "rln"}))
    assert n == rln_parameter_count() == 15968
    assert abs(n - 16000) <= 0.05 * 16000


def test_rcan_default_parameter_count_is_its_structure_s():
    net = build_network({"arch": "rcan"})
    assert isinstance(net, RCAN)
    assert count_parameters(net) == rcan_parameter_count(32, 5, 3, 8) == 1_002_621
    small = RCANConfig.cpu()
    assert count_parameters(build_network({"arch": "rcan", "arch_options": small})) == (
        rcan_parameter_count(
            small["channels"], small["groups"], small["blocks"], small["reduction"]
        )
    )


@pytest.mark.parametrize("arch", ["unet", "rln", "rcan", "debcr"])
def test_every_network_has_multiple_and_in_channels_and_keeps_the_shape(arch):
    net = build_network({"arch": arch, "arch_options": SMALL.get(arch, {})}).eval()
    m = net.multiple
    x = torch.rand(1, net.in_channels, 2 * m if m > 2 else 8, 4 * m, 4 * m)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 1, *x.shape[2:]) and torch.isfinite(y).all()


def test_build_network_reads_a_network_entry_a_whole_config_and_old_folders():
    assert isinstance(build_network(None), ResUNet)
    assert isinstance(build_network({"base_channels": 4, "depth": 1}), ResUNet)  # no arch: old
    whole = {"arch": "debcr", "network": {"arch_options": SMALL["debcr"]}}
    assert isinstance(build_network(whole), DeBCR)
    assert isinstance(build_network({"arch": "rln", "network": {"base_channels": 8}}), RLN)
    with pytest.raises(NeuroDeconError, match="unknown rcan option"):
        build_network({"arch": "rcan", "arch_options": {"width": 3}})
    with pytest.raises(NeuroDeconError, match="unknown architecture"):
        build_network({"arch": "vit"})


def test_haar_transform_is_orthonormal_and_inverts():
    x = torch.randn(2, 3, 8, 6, 4, dtype=torch.float64)
    for axes in ((3, 4), (2, 3, 4), (4,)):
        h = haar_analysis(x, axes)
        assert h.shape[1] == 3 * 2 ** len(axes)
        torch.testing.assert_close(h.pow(2).sum(), x.pow(2).sum())  # energy kept
        torch.testing.assert_close(haar_synthesis(h, axes), x)
    # the low-pass band of a constant carries all of it
    h = haar_analysis(torch.ones(1, 1, 2, 2, 2), (2, 3, 4))
    torch.testing.assert_close(h[0, :, 0, 0, 0], torch.tensor([8**0.5] + [0.0] * 7))


def test_debcr_halves_z_only_where_the_voxels_allow():
    assert z_halving_for((0.1, 0.1, 0.1), 2) == (True, True)
    assert z_halving_for((0.3, 0.1, 0.1), 3) == (False, True, True)
    assert z_halving_for((1.0, 0.1, 0.1), 3) == (False, False, False)
    cfg = DeBCRConfig(scales=2, levels=1, z_halving=(False, True))
    assert cfg.halvings() == [(3, 4), (2, 3, 4)]
    net = DeBCR(cfg)
    assert [p.shape[2:] for p in net.pyramid(torch.rand(1, 1, 8, 16, 16))] == [
        (8, 16, 16),
        (8, 8, 8),
    ]


# ---- losses ---------------------------------------------------------------------------------


def test_rln_loss_is_zero_at_the_target_and_weighs_its_terms():
    torch.manual_seed(0)
    x, y = torch.rand(2, 1, 4, 8, 8), torch.rand(2, 1, 4, 8, 8)
    guide = 0.8 * y + 0.2 * x
    assert float(rln_loss(y, y, x, guide)) == pytest.approx(0.0, abs=1e-6)
    off = float(rln_loss(y, y, x, guide + 0.1))
    assert off == pytest.approx(0.1 * 0.01, rel=1e-4)  # 0.1 · MSE of the intermediate


def test_debcr_loss_is_mse_plus_half_the_3d_fourier_term_over_scales():
    torch.manual_seed(0)
    p, t = torch.rand(1, 1, 4, 8, 8), torch.rand(1, 1, 4, 8, 8)
    expected = ((p - t) ** 2).mean() + 0.5 * fourier_l1(p, t)
    torch.testing.assert_close(debcr_loss(p, t), expected)
    assert float(fourier_l1(t, t)) == 0.0
    # the Fourier term sees every axis: a change along z alone moves it
    q = t.clone()
    q[:, :, ::2] += 0.1
    assert float(fourier_l1(q, t)) > 0
    net = _net("debcr")
    pred, extras = net.forward_train(p)
    loss = debcr_loss(pred, t, extras)
    assert loss > debcr_loss(pred, t)  # the coarser scale adds its term


def test_rln_custom_gradients_are_the_authors_when_switched_on():
    from neurodecon.learn import RLNConfig

    assert RLNConfig().custom_gradients is False  # measured: the analytic ones train better
    a = torch.rand(1, 1, 4, 4, 4) + 0.5
    for custom in (True, False):
        net = _net("rln", custom_gradients=custom)
        b = torch.rand(1, 1, 4, 4, 4, requires_grad=True) + 0.5
        b.retain_grad()
        a_ = a.clone().requires_grad_(True)
        net._div(a_, b).sum().backward()
        m = (a / (b + 0.001)).detach()
        if custom:
            torch.testing.assert_close(a_.grad, torch.ones_like(a))
            torch.testing.assert_close(b.grad, -(m**2))
        else:
            torch.testing.assert_close(b.grad, -m / (b.detach() + 0.001))


# ---- configuration --------------------------------------------------------------------------


def test_each_arch_defaults_to_its_paper_s_training_unless_given():
    rln = TrainConfig.from_dict({"arch": "rln"})
    assert (rln.loss.kind.value, rln.optim.lr, rln.optim.schedule.value) == (
        "rln",
        0.015,
        "exponential",
    )
    assert not rln.physics.on and rln.data.batch == 4 and rln.net.in_channels == 1
    rcan = TrainConfig.from_dict({"net": {"arch": "rcan"}, "lr": 3e-4, "loss": "mse"})
    assert rcan.optim.lr == 3e-4 and rcan.loss.kind.value == "mse"  # given: kept
    assert rcan.optim.schedule.value == "step" and rcan.net.arch_options["channels"] == 32
    assert TrainConfig.from_dict(rcan.to_dict()) == rcan
    unet = TrainConfig.from_dict({})
    assert unet.net.arch.value == "unet" and unet.physics.on and unet.optim.lr == 1e-3
    assert "arch" not in unet.to_dict()["net"]["arch_options"]
    with pytest.raises(NeuroDeconError, match="rl is for --arch unet"):
        TrainConfig.from_dict({"arch": "rln", "physics": "rl"})
    with pytest.raises(NeuroDeconError, match="rln needs --arch rln"):
        TrainConfig.from_dict({"loss": "rln"})
    with pytest.raises(NeuroDeconError, match="multiple of 16"):
        TrainConfig.from_dict({"arch": "debcr", "patch": (12, 64, 64)})
    with pytest.raises(NeuroDeconError, match="arch_options apply"):
        TrainConfig.from_dict({"arch_options": {"channels": 3}})


def test_the_papers_schedules():
    rln = TrainConfig.from_dict({"arch": "rln", "steps": 10_000})
    assert lr_factor(600, rln) == pytest.approx(0.95)
    assert lr_factor(6000, rln, 0.9) == pytest.approx(0.95**10)  # by steps only
    debcr = TrainConfig.from_dict({"arch": "debcr", "steps": 100})
    assert lr_factor(0, debcr) == lr_factor(99, debcr, 1.0) == 1.0
    rcan = TrainConfig.from_dict({"arch": "rcan", "steps": 100})
    assert [lr_factor(s, rcan) for s in (24, 25, 50, 75)] == [1.0, 0.5, 0.25, 0.125]
    assert lr_factor(1, rcan, 0.5) == 0.25  # the time budget runs ahead of the steps


# ---- training, resume, inference ------------------------------------------------------------


@pytest.mark.parametrize("arch", ["rln", "rcan", "debcr"])
def test_train_cut_and_resume_equals_an_uninterrupted_run(tmp_path, arch):
    from neurodecon.progress import Cancelled

    cfg = {**TINY, "arch": arch, "arch_options": SMALL[arch], "steps": 4}
    cfg.update(checkpoint_every=2, val_every=2, batch=2)
    psf = gaussian_kernel()
    full = train(cfg, output_dir=tmp_path / "full", psf=psf)
    with pytest.raises(Cancelled):
        train(cfg, output_dir=tmp_path / "cut", psf=psf, progress=lambda s, t, m: s < 3)
    cut = train(cfg, output_dir=tmp_path / "cut", psf=psf, resume=True)
    a, b = load_model(full), load_model(cut)
    assert a.arch == b.arch == arch and a.config["arch"] == arch
    assert a.config["n_parameters"] == count_parameters(a.net)
    assert a.config["inference"]["halo"] == {"rln": 20, "rcan": 9, "debcr": 21}[arch]
    assert a.config["training"]["net"]["arch"] == arch and "kernel_psf.npy" in {
        p.name for p in full.iterdir()
    }
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)
    out = predict(a, np.random.default_rng(0).uniform(0, 9, (10, 20, 22)).astype(np.float32))
    assert out.shape == (10, 20, 22) and np.isfinite(out).all()


@pytest.mark.parametrize(
    "arch,options",
    [("rln", {}), ("rcan", {"attention": False}), ("debcr", {})],
    ids=["rln", "rcan-no-attention", "debcr"],
)
def test_tiled_prediction_equals_untiled(arch, options):
    net = _net(arch, **options)
    if arch == "rln":  # batch-norm statistics away from their start
        with torch.no_grad():
            for mod in net.modules():
                if isinstance(mod, torch.nn.BatchNorm3d):
                    mod.running_mean.uniform_(-0.2, 0.2)
                    mod.running_var.uniform_(0.5, 2.0)
    cfg = {"voxel_size_um": list(VS), "normalization": {"percentiles": [1.0, 99.8]}}
    model = Model(net, {**cfg, "arch": arch, "inference": {"halo": 20}})
    vol = np.random.default_rng(1).uniform(0, 1, (10, 22, 90)).astype(np.float32)
    whole = predict(model, vol, tile_shape=(64, 64, 128), device="cpu", check=False)
    tiled = predict(model, vol, tile_shape=(8, 16, 16), halo=20, device="cpu", check=False)
    assert float(np.abs(tiled - whole).max()) < 1e-4 * max(1.0, float(np.abs(whole).max()))


def test_rcan_channel_attention_sees_the_whole_tile():
    """Documented limit: with attention the output of a tile depends on the whole tile."""
    net = _net("rcan")
    x = torch.rand(1, 1, 8, 16, 32)
    with torch.no_grad():
        whole = net(x)[..., :16]
        half = net(x[..., :16])
    assert float((whole - half).abs()[..., :4].max()) > 0  # far from the cut, still different


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["unet", "rln", "rcan", "debcr"])
def test_cuda_matches_the_cpu(arch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    net = build_network({"arch": arch, "arch_options": SMALL.get(arch, {})}).eval()
    x = torch.rand(1, net.in_channels, 8, 16, 16)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # float32 on both sides
    try:
        with torch.no_grad():
            cpu = net(x)
            gpu = net.cuda()(x.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["rln", "rcan", "debcr"])
def test_every_network_gives_the_flip_spread_through_the_one_path(arch):
    """``predict_with_spread`` (``deconvolve --uncertainty``) for the other architectures: the
    mean and standard deviation of ``predict`` on the model's flips, flipped back."""
    from neurodecon.learn import augmentations, predict_with_spread

    cfg = {"voxel_size_um": list(VS), "normalization": {"percentiles": [1.0, 99.8]}}
    model = Model(_net(arch), {**cfg, "arch": arch, "inference": {"halo": 8}})
    vol = np.random.default_rng(2).uniform(0, 1, (8, 24, 20)).astype(np.float32)
    mean, spread = predict_with_spread(model, vol, device="cpu", check=False)
    flips = augmentations(model)
    assert flips == [(), (1,), (2,), (1, 2)]
    runs = [
        np.flip(predict(model, np.ascontiguousarray(np.flip(vol, f)), device="cpu", check=False), f)
        for f in flips
    ]
    scale = float(np.abs(runs).max())
    np.testing.assert_allclose(mean, np.mean(runs, axis=0), atol=1e-4 * scale)
    np.testing.assert_allclose(spread, np.std(runs, axis=0), atol=1e-4 * scale)
    assert spread.shape == vol.shape and spread.min() >= 0 and spread.max() > 0


@pytest.mark.parametrize("arch", ["unet", "rln", "rcan", "debcr"])
def test_networks_run_channels_last_on_the_cpu_with_the_same_outputs(arch):
    import copy

    from neurodecon.learn import build_network, place_network

    torch.manual_seed(0)
    net = build_network({"arch": arch}).eval()
    placed = place_network(copy.deepcopy(net), torch.device("cpu"))
    # (with one input channel or a 1×1×1 kernel both layouts are the same memory)
    conv = next(
        m
        for m in placed.modules()
        if isinstance(m, torch.nn.Conv3d) and m.in_channels > 1 and max(m.kernel_size) > 1
    )
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not conv.weight.is_contiguous()  # the layout changed, not only the device
    x = torch.rand(1, net.in_channels, 16, 32, 32)
    with torch.no_grad():
        expect, got = net(x), placed(x)
    np.testing.assert_allclose(got.numpy(), expect.numpy(), rtol=1e-4, atol=1e-5)
