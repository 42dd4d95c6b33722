"""Self-Net (``nd.isotropic``): training pairs, networks, training and resume, inference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

import neurodecon as nd
from neurodecon.errors import NeuroDeconError
from neurodecon.learn import (
    SelfNetConfig,
    SelfNetData,
    SelfNetGenerator,
    SelfNetTraining,
    anisotropy_ratio,
    degrade_lateral,
    load_selfnet,
    restore_isotropic,
    train_selfnet,
    z_interpolate,
)
from neurodecon.progress import Cancelled

TINY = SelfNetConfig(channels=4, blocks=1, disc_channels=4, patch=16, batch=2, steps=12)
CPU = torch.device("cpu")
VOX = (0.3, 0.1, 0.1)


def _stack(
    nz: int = 12,
    n: int = 40,
    ratio: int = 3,
    seed: int = 0,
    blobs: int = 60,
    noise: float = 2.0,
    sigma_z: float | None = None,
) -> np.ndarray:
    """Blobs on an isotropic grid, blurred ``ratio``× more along z, sampled every ``ratio``."""
    rng = np.random.default_rng(seed)
    iso = np.zeros(((nz - 1) * ratio + 1, n, n), np.float32)
    pts = rng.integers(0, [iso.shape[0], n, n], size=(blobs, 3))
    iso[tuple(pts.T)] = rng.uniform(0.5, 1.0, blobs)
    iso = ndimage.gaussian_filter(iso, (sigma_z or 1.2 * ratio, 1.2, 1.2))
    noisy = iso[::ratio] / iso.max() * 500 + rng.normal(0, noise, (nz, n, n))
    return noisy.astype(np.float32)


# ---- training pairs ------------------------------------------------------------------------


def test_degrade_lateral_blurs_one_axis_to_the_axial_sampling_only():
    h = w = 48
    y = np.arange(h)[:, None] * np.ones((1, w))
    x = np.ones((h, 1)) * np.arange(w)[None, :]
    fine_rows = np.cos(np.pi * 0.8 * y)  # above the axial Nyquist of ratio 3 (1/6 cycle/px)
    slow_rows = np.cos(2 * np.pi * y / 24.0)  # well below it
    cols = np.cos(np.pi * 0.8 * x)  # varies along W only
    out = degrade_lateral(np.stack([fine_rows, slow_rows, cols]).astype(np.float32), 3.0)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(out[0][inner]).max() < 0.1  # fine detail along H removed
    assert np.abs(out[1] - slow_rows)[inner].max() < 0.05  # coarse detail along H kept
    np.testing.assert_allclose(out[2], cols, atol=1e-5)  # W untouched


def test_z_interpolate_grid_and_values_agree_with_np_interp():
    ramp = np.linspace(0, 9, 10, dtype=np.float32)[:, None, None] * np.ones((1, 4, 5), np.float32)
    out = z_interpolate(ramp, 2.5)
    assert out.shape == (23, 4, 5)  # floor(9 · 2.5) + 1: first to last input plane
    expect = np.interp(np.arange(23) / 2.5, np.arange(10), np.arange(10.0))
    np.testing.assert_allclose(out[:, 2, 3], expect, atol=0.1)  # the spline's edge planes
    np.testing.assert_allclose(out[6:-6, 2, 3], expect[6:-6], atol=1e-2)
    vol = np.random.default_rng(0).random((6, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(z_interpolate(vol, 3.0)[::3], vol, atol=1e-5)  # planes coincide


def test_training_data_domains_and_patches():
    data = SelfNetData.from_stack(_stack(), 3.0)
    assert data.axial.shape == (34, 40, 40) and data.degraded.shape == data.lateral.shape
    batch = data.sample(np.random.default_rng(1), 5, 16)
    assert {k: v.shape for k, v in batch.items()} == {
        k: (5, 16, 16) for k in ("xy", "xy_lr", "axial")
    }
    # the degraded patch is its lateral partner, blurred: smoother, same mean
    grad = lambda a: np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=2)).mean()  # noqa: E731
    assert grad(batch["xy_lr"]) < grad(batch["xy"])
    assert (
        abs(batch["xy_lr"].mean() - batch["xy"].mean()) < 0.05 * np.abs(batch["xy"]).mean() + 0.02
    )


def test_without_rotations_the_axial_direction_stays_along_the_patch_rows():
    """``rotate=False``: the 4 flips / half-turns that keep the degraded axis along z's rows."""
    data = SelfNetData.from_stack(_stack(), 3.0)
    rows = np.arange(40, dtype=np.float32)[:, None] * np.ones((1, 40), np.float32)
    data.lateral = data.degraded = np.repeat(rows[None], data.lateral.shape[0], axis=0)
    data.axial = np.repeat(rows[None, :34, :], 34, axis=0).transpose(1, 0, 2).copy()  # z varies
    data.threshold = -1.0
    for rotate, expect_rows in ((False, True), (True, False)):
        batch = data.sample(np.random.default_rng(2), 64, 16, rotate=rotate)
        for name in ("xy", "xy_lr", "axial"):
            along_rows = np.ptp(batch[name], axis=2).max() == 0  # constant across each row
            assert along_rows if expect_rows else not along_rows, (name, rotate)


def test_the_measured_axial_blur_is_the_blur_the_sampling_does_not_explain():
    # z blur σ 3.6 px on the isotropic grid, lateral 1.2: the axial planes carry an extra
    # √(3.6² − 1.2²) ≈ 3.4 px; the measurement finds it within 15 %, and none when z is not blurred
    # more than xy (only coarser sampled)
    blurred = SelfNetData.from_stack(_stack(16, 64, blobs=400, sigma_z=3.6), 3.0)
    assert 2.9 <= blurred.axial_blur_px <= 3.9
    sampled_only = SelfNetData.from_stack(_stack(16, 64, blobs=400, sigma_z=1.2), 3.0)
    assert sampled_only.axial_blur_px <= 0.5
    authors = SelfNetData.from_stack(_stack(16, 64, blobs=400, sigma_z=3.6), 3.0, match_blur=False)
    assert authors.axial_blur_px == 0.0
    grad = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert grad(blurred.degraded) < 0.8 * grad(authors.degraded)  # more blur along the rows


@pytest.mark.parametrize(
    ("vox", "words"),
    [
        ((0.1, 0.1, 0.1), "already (nearly) isotropic"),
        ((0.05, 0.1, 0.1), "already (nearly) isotropic"),  # ratio < 1: z finer than xy
        ((0.3, 0.1, 0.12), "lateral voxel sizes differ"),
    ],
)
def test_bad_voxel_sizes_are_one_line_errors(vox, words):
    with pytest.raises(NeuroDeconError, match="isotropic|differ") as err:
        nd.isotropic(_stack(), voxel_size_um=vox, config=TINY, device="cpu")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert anisotropy_ratio((0.35, 0.1, 0.1)) == pytest.approx(3.5)


def test_a_2d_image_and_a_too_small_stack_are_one_line_errors():
    with pytest.raises(NeuroDeconError):
        nd.isotropic(np.ones((40, 40), np.float32), voxel_size_um=VOX, config=TINY, device="cpu")
    with pytest.raises(NeuroDeconError, match="too small") as err:
        nd.isotropic(_stack(nz=4, n=12), voxel_size_um=VOX, config=TINY, device="cpu")
    assert "\n" not in str(err.value)


# ---- networks, training, resume -----------------------------------------------------------


def test_paper_generator_size_and_identity_start():
    assert 590_000 < sum(p.numel() for p in SelfNetGenerator(64, 6).parameters()) < 610_000
    net, x = SelfNetGenerator(4, 1), torch.rand(1, 1, 20, 24)
    assert net(x).shape == x.shape and not torch.allclose(net(x), x)
    torch.nn.init.zeros_(net.body[-1].weight)
    torch.nn.init.zeros_(net.body[-1].bias)
    torch.testing.assert_close(net(x), x)  # the global residual: input + learned correction


def test_training_steps_reduce_the_deblurring_loss():
    from neurodecon.learn._selfnet_nets import restoration_loss  # noqa: PLC2701 - a test

    torch.manual_seed(0)
    data = SelfNetData.from_stack(_stack(blobs=400, noise=0.0), 3.0)  # structure, no noise floor
    batch = data.sample(np.random.default_rng(0), 4, 16)
    tb = {k: torch.from_numpy(v[:, None]) for k, v in batch.items()}
    t = SelfNetTraining(TINY.with_changes(steps=60, lr=2e-3, channels=8), CPU)

    def loss() -> float:
        with torch.no_grad():
            return float(restoration_loss(t.deblur(t.degrade(tb["xy_lr"])), tb["xy"], 0.1))

    from neurodecon.learn._selfnet_train import train_step  # noqa: PLC2701

    before = loss()
    for _ in range(40):
        train_step(t, tb)
        t.step += 1
    assert loss() < 0.9 * before


def test_the_restoring_network_is_the_moving_average_of_the_deblurring_weights():
    from neurodecon.learn._selfnet_train import train_step  # noqa: PLC2701 - a test

    data = SelfNetData.from_stack(_stack(), 3.0)
    tb = {
        k: torch.from_numpy(v[:, None])
        for k, v in data.sample(np.random.default_rng(0), 2, 16).items()
    }
    decay = 0.8
    t = SelfNetTraining(TINY.with_changes(average_decay=decay), CPU)
    expect = [p.detach().clone() for p in t.deblur.parameters()]  # the average starts there
    for k in range(40):
        train_step(t, tb)
        t.step += 1
        d = min(decay, (1 + k) / (10 + k))  # the ramp: early steps are not held back
        expect = [
            d * e + (1 - d) * p.detach() for e, p in zip(expect, t.deblur.parameters(), strict=True)
        ]
    assert t.result() is t.deblur_average
    for a, e in zip(t.result().parameters(), expect, strict=True):
        torch.testing.assert_close(a, e)
    last = zip(t.result().parameters(), t.deblur.parameters(), strict=True)
    assert any(not torch.equal(a, p) for a, p in last)  # the average lags the last step's weights
    assert SelfNetTraining(TINY.with_changes(average_decay=0.0), CPU).result().training is False
    with pytest.raises(NeuroDeconError, match="below 1"):
        TINY.with_changes(average_decay=1.0)


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    data = SelfNetData.from_stack(_stack(), 3.0)
    ckpt = tmp_path / "checkpoint.pt"
    whole = train_selfnet(data, TINY, device=CPU, seed=3)

    def stop_at_5(done, total, message):
        return done < 5

    with pytest.raises(Cancelled):
        train_selfnet(data, TINY, device=CPU, seed=3, checkpoint=ckpt, progress=stop_at_5)
    assert torch.load(ckpt, weights_only=False)["step"] == 5
    resumed = train_selfnet(data, TINY, device=CPU, seed=3, checkpoint=ckpt, resume=True)
    assert resumed.step == whole.step == 12
    assert resumed.result() is resumed.deblur_average  # the preset's moving average, resumed too
    for net in ("deblur", "deblur_average"):
        pairs = zip(
            getattr(resumed, net).parameters(), getattr(whole, net).parameters(), strict=True
        )
        for a, b in pairs:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(NeuroDeconError, match="another Self-Net configuration"):
        train_selfnet(data, TINY.with_changes(channels=8), device=CPU, checkpoint=ckpt, resume=True)


def test_time_limit_stops_training():
    data = SelfNetData.from_stack(_stack(), 3.0)
    t = train_selfnet(data, TINY.with_changes(steps=10_000), device=CPU, time_limit_s=0.5)
    assert 0 < t.step < 10_000


# ---- inference ---------------------------------------------------------------------------


class _ShiftW(torch.nn.Module):
    """Rolls each plane by one pixel along its width: X for xz planes, Y for yz planes."""

    def forward(self, x):
        return torch.roll(x, 1, dims=-1)


def _fused_by_hand(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """w · A + (1 − w) · B over the whole 3D spectrum, w = kx² / (kx² + ky²) (½ at 0)."""
    ky = np.fft.fftfreq(a.shape[1])[None, :, None]
    kx = np.fft.fftfreq(a.shape[2])[None, None, :]
    den = kx**2 + ky**2
    w = np.where(den > 0, kx**2 / np.where(den > 0, den, 1.0), 0.5)
    return np.real(np.fft.ifftn(w * np.fft.fftn(a) + (1 - w) * np.fft.fftn(b)))


def test_inference_fuses_the_xz_and_yz_restorations():
    vol = np.random.default_rng(0).random((6, 9, 11)).astype(np.float32)
    out = restore_isotropic(_ShiftW(), vol, 2.0, device=CPU)
    iso = z_interpolate(vol, 2.0)  # _ShiftW rolls along each plane's width: x in xz, y in yz
    expect = _fused_by_hand(np.roll(iso, 1, axis=2), np.roll(iso, 1, axis=1))
    np.testing.assert_allclose(out, expect, atol=1e-5)


def test_the_channels_last_restoration_equals_the_network_on_each_plane():
    """Restoration runs the network channels last; it must be the same network's output."""
    from neurodecon.learn import fuse_directions

    torch.manual_seed(0)
    net = SelfNetGenerator(8, 2).eval()
    vol = np.random.default_rng(2).random((6, 20, 24)).astype(np.float32)
    out = restore_isotropic(net, vol, 2.0, device=CPU)
    conv = net.body[1][1]  # a 3×3 convolution, 8 → 8 channels
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # restore_isotropic placed it channels last
    net = net.to(memory_format=torch.contiguous_format)
    iso = z_interpolate(vol, 2.0)
    with torch.no_grad():
        xz = [net(torch.from_numpy(iso[:, y].copy())[None, None])[0, 0] for y in range(20)]
        yz = [net(torch.from_numpy(iso[:, :, x].copy())[None, None])[0, 0] for x in range(24)]
    expect = fuse_directions(torch.stack(xz, 1).numpy(), torch.stack(yz, 2).numpy())
    np.testing.assert_allclose(out, expect, atol=1e-5)


class _Undershoot(torch.nn.Module):
    """Doubles each plane's contrast around 0.3 of the range: dark halos below the background."""

    def forward(self, x):
        return 2.0 * x - 0.3


def test_the_restored_stack_is_in_its_units_floored_at_its_background():
    from neurodecon.learn import restore_stack, stack_normalization
    from neurodecon.metrics import estimate_background

    vol = _stack(noise=1.0) + 100.0  # a camera offset
    norm = stack_normalization(vol)
    out, floor = restore_stack(_Undershoot(), vol, 3.0, device=CPU)
    assert floor == pytest.approx(float(estimate_background(vol)))
    assert 95.0 < floor < 105.0  # the offset, not 0 nor a normalised level
    raw = norm.invert(restore_isotropic(_Undershoot(), norm.apply(vol), 3.0, device=CPU))
    unfloored, level = restore_stack(_Undershoot(), vol, 3.0, device=CPU, floor=False)
    np.testing.assert_array_equal(unfloored, raw)
    assert level == floor
    assert (raw < floor).mean() > 0.2  # the undershoot the floor removes
    np.testing.assert_allclose(out, np.maximum(raw, floor), rtol=1e-6)
    above = raw > floor
    np.testing.assert_array_equal(out[above], raw[above])  # nothing above the floor changes
    # another mapping (the benchmark's diagnosis) changes the network's input, not the floor
    other = replace(norm, low=norm.low - 5.0)
    out2, floor2 = restore_stack(_Undershoot(), vol, 3.0, device=CPU, norm=other)
    assert floor2 == floor and not np.allclose(out2, out)


def test_each_restoration_is_trusted_along_its_own_lateral_axis():
    from neurodecon.learn import fuse_directions

    z, y, x = np.meshgrid(np.arange(5), np.arange(32), np.arange(40), indexing="ij")
    along_x = np.cos(2 * np.pi * x / 8).astype(np.float32)  # detail along x: from xz planes
    along_y = np.cos(2 * np.pi * y / 8).astype(np.float32)  # detail along y: from yz planes
    np.testing.assert_allclose(fuse_directions(along_x, np.zeros_like(along_x)), along_x, atol=1e-5)
    np.testing.assert_allclose(fuse_directions(np.zeros_like(along_y), along_y), along_y, atol=1e-5)
    same = np.random.default_rng(1).random((5, 32, 40)).astype(np.float32)
    np.testing.assert_allclose(fuse_directions(same, same, planes=2), same, atol=1e-5)
    flat = fuse_directions(np.full_like(same, 2.0), np.zeros_like(same))
    np.testing.assert_allclose(flat, 1.0, atol=1e-5)  # the mean level: the plain average


def test_isotropic_output_grid_voxel_size_and_intensities(tmp_path):
    stack = _stack()
    res = nd.isotropic(
        stack, voxel_size_um=VOX, config=TINY, device="cpu", save_model=tmp_path / "m"
    )
    assert res.data.shape == (34, 40, 40) and res.data.dtype == np.float32
    assert res.voxel_size_um == pytest.approx((0.1, 0.1, 0.1))
    rec = res.metadata["isotropic"]
    assert rec["anisotropy_ratio"] == pytest.approx(3.0) and rec["steps_done"] == 12
    assert res.data.min() >= np.float32(rec["background_floor"]) - 1e-3  # recorded, applied
    assert abs(res.data.mean() - stack.mean()) < 0.25 * stack.std()  # same intensity scale
    assert np.corrcoef(res.data[::3].ravel(), stack.ravel())[0, 1] > 0.9  # same structures
    model = load_selfnet(tmp_path / "m")
    assert model.ratio == pytest.approx(3.0) and model.config == TINY
    again = nd.isotropic(stack, voxel_size_um=VOX, model=tmp_path / "m", device="cpu")
    np.testing.assert_allclose(again.data, res.data, atol=1e-4)  # the saved model is the one used
    with pytest.raises(NeuroDeconError, match="trained for anisotropy 3.00"):
        nd.isotropic(stack, voxel_size_um=(0.5, 0.1, 0.1), model=tmp_path / "m", device="cpu")
    with pytest.raises(NeuroDeconError, match="not empty"):
        nd.isotropic(stack, voxel_size_um=VOX, config=TINY, save_model=tmp_path / "m")


def test_a_preset_patch_larger_than_a_small_stack_shrinks_to_fit(caplog):
    big = replace(TINY, patch=48, steps=2)  # the cpu preset's patch; the grid is 34×40×40
    with caplog.at_level("INFO", logger="neurodecon"):
        res = nd.isotropic(_stack(), voxel_size_um=VOX, config=big, device="cpu")
    assert res.metadata["isotropic"]["config"]["patch"] == 32  # the largest multiple of 8
    assert "32-pixel patches for this small stack" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_restoration_matches_cpu():
    net = SelfNetGenerator(8, 2).eval()
    vol = np.random.default_rng(0).random((8, 24, 24)).astype(np.float32)
    cpu = restore_isotropic(net, vol, 3.0, device=CPU)
    gpu = restore_isotropic(net, vol, 3.0, device=torch.device("cuda"))
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)
