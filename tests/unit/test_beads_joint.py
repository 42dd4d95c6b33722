"""Joint bead PSF estimation judged by the deconvolution it gives (issue: bead PSFs that keep their
whole extent).

The simulator is independent of the code under test: each bead is a uniform sphere at a random
sub-voxel centre, blurred by the true PSF (``make_psf``) exactly in Fourier space (analytic sphere
transform × PSF transform × phase ramp) on a grid large enough for a linear convolution, then
Poisson noise, a camera offset and Gaussian read noise. The true PSF box is ``2·N − 1`` voxels per
axis (every bead-to-voxel offset of the stack), so that the widefield cone is not truncated.
``benchmarks/bench_beads_joint.py`` imports these helpers for the full-size benchmark.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft

from neurodecon.classical import deconvolve
from neurodecon.metrics import normalize_pair, psnr, ssim
from neurodecon.psf import extract_psf, make_psf, prepare_psf, resolve_psf

#: The simulated microscopes of the benchmark (model, voxel size, optics).
MICROSCOPES = {
    "widefield NA 1.3 oil": {
        "model": "widefield",
        "voxel_size_um": (0.2, 0.065, 0.065),
        "optics": {"na": 1.3, "wavelength_um": 0.52, "immersion_index": 1.515},
    },
    "confocal NA 1.4 oil, 0.35 waves spherical": {
        "model": "confocal",
        "voxel_size_um": (0.13, 0.045, 0.045),
        "optics": {
            "na": 1.4,
            "wavelength_um": 0.52,
            "excitation_wavelength_um": 0.488,
            "immersion_index": 1.515,
            "pinhole_au": 1.0,
            "spherical_waves": 0.35,
        },
    },
    "confocal NA 1.2 water": {
        "model": "confocal",
        "voxel_size_um": (0.15, 0.05, 0.05),
        "optics": {
            "na": 1.2,
            "wavelength_um": 0.52,
            "excitation_wavelength_um": 0.488,
            "immersion_index": 1.33,
            "pinhole_au": 1.0,
        },
    },
}
OFFSET, READ_NOISE, BACKGROUND = 100.0, 2.0, 2.0


def true_psf(name: str, stack_shape) -> np.ndarray:
    """The microscope's PSF on a ``2·N − 1`` box: every offset between two voxels of the stack."""
    m = MICROSCOPES[name]
    shape = tuple(2 * n - 1 for n in stack_shape)
    return make_psf(m["model"], shape=shape, voxel_size_um=m["voxel_size_um"], **m["optics"])


def _sphere_ft(k_um: np.ndarray, diameter: float) -> np.ndarray:
    x = np.pi * k_um * diameter
    safe = np.where(x > 1e-6, x, 1.0)
    return np.where(x > 1e-6, 3 * (np.sin(safe) - safe * np.cos(safe)) / safe**3, 1.0)


def blur_points(shape, psf, vox, centres, amplitudes, diameter) -> np.ndarray:
    """Σ a_i · (sphere at c_i) ⊛ psf on ``shape``, exact (linear convolution in Fourier space)."""
    grid = [fft.next_fast_len(n + p - 1, real=True) for n, p in zip(shape, psf.shape, strict=True)]
    kz, ky = (np.fft.fftfreq(g) for g in grid[:2])
    kx = np.fft.rfftfreq(grid[2])
    spec = np.zeros((grid[0], grid[1], grid[2] // 2 + 1), np.complex128)
    for c, a in zip(centres, amplitudes, strict=True):
        spec += a * (
            np.exp(-2j * np.pi * kz * c[0])[:, None, None]
            * np.exp(-2j * np.pi * ky * c[1])[None, :, None]
            * np.exp(-2j * np.pi * kx * c[2])[None, None, :]
        )
    k_um = np.sqrt(
        (kz[:, None, None] / vox[0]) ** 2
        + (ky[None, :, None] / vox[1]) ** 2
        + (kx[None, None, :] / vox[2]) ** 2
    )
    spec *= _sphere_ft(k_um, diameter)
    big = np.zeros(grid, np.float64)
    big[: psf.shape[0], : psf.shape[1], : psf.shape[2]] = psf
    big = np.roll(big, [-(n // 2) for n in psf.shape], axis=(0, 1, 2))
    img = fft.irfftn(spec * fft.rfftn(big), grid)[: shape[0], : shape[1], : shape[2]]
    return np.clip(img, 0, None)


def bead_stack(name, psf, shape, *, n_beads=12, seed=0, peak=1500.0, diameter=0.1):
    """Camera image of ``n_beads`` beads at random positions (≥ 0.8 µm apart), offset 100."""
    vox = np.asarray(MICROSCOPES[name]["voxel_size_um"])
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < n_beads:
        c = rng.uniform([2, 2, 2], np.array(shape) - 3)
        if all(np.linalg.norm((c - o) * vox) >= 0.8 for o in centres):
            centres.append(c)
    amps = rng.uniform(0.7, 1.3, n_beads)
    img = blur_points(shape, psf, vox, centres, amps, diameter)
    expected = img * (peak * amps.max() / img.max()) + BACKGROUND
    noisy = rng.poisson(expected).astype(np.float32) + np.float32(OFFSET)
    return noisy + rng.normal(0, READ_NOISE, shape).astype(np.float32), np.array(centres)


def sample(name, psf, shape, *, seed=1, photons=None):
    """A filaments + puncta phantom of the same microscope (offset, background, read noise)."""
    from neurodecon.synth import forward_model, phantom

    vox = MICROSCOPES[name]["voxel_size_um"]
    truth = phantom(
        "filaments,puncta", shape=shape, voxel_size_um=vox, seed=seed, density=0.3, feature_um=0.065
    )
    if photons is None:
        photons = 30000.0 if MICROSCOPES[name]["model"] == "widefield" else 10000.0
    image = forward_model(
        truth,
        psf,
        photons=photons,
        background=BACKGROUND,
        read_noise=READ_NOISE,
        offset=OFFSET,
        seed=seed + 100,
    )
    return truth, image


def rl_scores(image, truth, psf, vox, iterations: int) -> tuple[float, float]:
    """PSNR and SSIM (after the affine ``normalize_pair``) of RL with ``psf`` (via resolve_psf)."""
    ready = resolve_psf(
        image_shape=image.shape, image_voxel_size_um=vox, psf=psf, psf_voxel_size_um=vox
    ).psf
    out = deconvolve(
        image, ready, "rl", iterations=iterations, background=OFFSET + BACKGROUND, device="cpu"
    )
    a, b = normalize_pair(out, truth)
    return psnr(a, b), ssim(a, b)


# ----------------------------------------------------------------------------- done-when (small)
@pytest.fixture(scope="module")
def small_widefield():
    name = "widefield NA 1.3 oil"
    shape = (24, 64, 64)
    psf = true_psf(name, shape)
    stack, centres = bead_stack(name, psf, shape, n_beads=8, seed=3)
    truth, image = sample(name, psf, shape, seed=4)
    return name, shape, psf, stack, centres, truth, image


def test_rl_with_the_extracted_psf_matches_rl_with_the_true_psf(small_widefield):
    """Done-when on a small widefield case: within 0.3 dB PSNR and 0.02 SSIM, default options.

    The per-bead average (a ±2.5 FWHM crop) misses the out-of-focus cone; it is measured here too,
    so that the test shows what it guards against.
    """
    name, shape, psf, stack, _, truth, image = small_widefield
    vox = MICROSCOPES[name]["voxel_size_um"]
    kw = {"image_shape": shape, "image_voxel_size_um": vox}
    r_true = rl_scores(image, truth, psf, vox, 60)
    res = resolve_psf(
        image_shape=shape,
        image_voxel_size_um=vox,
        beads=stack,
        bead_diameter_um=0.1,
        beads_voxel_size_um=vox,
    )
    assert res.beads.method == "joint" and res.beads.n_used == 8
    r_joint = rl_scores(image, truth, res.psf, vox, 60)
    assert abs(r_joint[0] - r_true[0]) <= 0.3, (r_joint, r_true)
    assert abs(r_joint[1] - r_true[1]) <= 0.02, (r_joint, r_true)
    avg = extract_psf(stack, voxel_size_um=vox, bead_diameter_um=0.1, method="average", **kw)
    r_avg = rl_scores(image, truth, avg.psf, vox, 60)
    assert r_true[1] - r_avg[1] > 0.02  # the truncated kernel is what the joint method fixes


def test_flux_per_plane_and_background_follow_the_physics(small_widefield):
    """Widefield flux per plane hardly decays with defocus: the PSF keeps it (within 15 %)."""
    name, shape, psf, stack, centres, *_ = small_widefield
    vox = MICROSCOPES[name]["voxel_size_um"]
    res = extract_psf(stack, voxel_size_um=vox, bead_diameter_um=0.1)
    true = prepare_psf(psf, image_shape=psf.shape)
    from neurodecon.psf import center_crop

    t = center_crop(true, res.psf.shape).astype(np.float64)
    t /= t.sum()
    err = res.flux_per_plane / t.sum(axis=(1, 2)) - 1
    assert res.psf.shape[0] >= 1.5 * shape[0]  # most offsets the stack holds, not ±2.5 FWHM
    c, h = len(err) // 2, shape[0] // 2  # the planes an image of the stack's depth needs
    assert np.abs(err[c - h : c + h + 1]).mean() < 0.1, np.round(err, 3)
    assert abs(res.info["background"] - (OFFSET + BACKGROUND)) < 1.0
    assert res.psf.sum() == pytest.approx(1.0, abs=1e-5) and res.psf.min() >= 0
    assert np.unravel_index(int(np.argmax(res.psf)), res.psf.shape) == tuple(
        n // 2 for n in res.psf.shape
    )
    # o* = i* ⊛ p on the same box, positions sub-voxel
    assert res.blurred_bead.shape == res.psf.shape == res.ideal_bead.shape
    d = np.linalg.norm(res.positions[:, None] - centres[None], axis=2).min(axis=1)
    assert np.all(d < 0.3), d
    assert set(res.qc) >= {"data_mip", "model_mip", "residual_mip", "measured_flux"}


def test_optics_give_the_cone_and_hybrid_tails_for_a_deeper_image(small_widefield, caplog):
    name, shape, psf, stack, *_ = small_widefield
    m = MICROSCOPES[name]
    vox = m["voxel_size_um"]
    deep = (2 * shape[0] + 11, shape[1], shape[2])
    with caplog.at_level("INFO", logger="neurodecon"):
        res = extract_psf(
            stack,
            voxel_size_um=vox,
            bead_diameter_um=0.1,
            optics={**m["optics"], "model": "widefield"},
            image_shape=deep,
        )
    assert res.psf.shape[0] == deep[0] and res.info["hybrid"]["model"] == "widefield"
    assert res.info["joint"]["cone_from_optics"]
    assert sum("hybrid PSF" in r.getMessage() for r in caplog.records) == 1
    from neurodecon.psf import center_crop

    t = center_crop(prepare_psf(true_psf(name, deep), image_shape=deep), res.psf.shape)
    err = res.flux_per_plane / (t.sum(axis=(1, 2)) / t.sum()) - 1
    assert np.abs(err).mean() < 0.15, np.round(err, 3)  # measured core, modelled far planes


def test_saturated_and_doublet_beads_are_left_out_not_dropped():
    """A clipped bead and a doublet stay in the model; only their neighbourhood is not fitted."""
    name = "confocal NA 1.2 water"
    vox = MICROSCOPES[name]["voxel_size_um"]
    shape = (24, 64, 64)
    psf = true_psf(name, shape)
    rng = np.random.default_rng(7)
    centres = [np.array([12.0, 16.0, 16.0]), np.array([11.3, 16.2, 46.7])]
    centres += [np.array([12.6, 46.1, 15.4]), np.array([12.6, 46.1 + 0.3 / vox[1], 15.4])]
    centres += [np.array([11.8, 44.5, 44.2]), np.array([12.2, 30.3, 31.1])]
    amps = np.array([1.0, 1.1, 1.0, 1.0, 9.0, 0.9])
    img = blur_points(shape, psf, vox, centres, amps, 0.1)
    img = img * (1500.0 / img[:, :40, :40].max()) + BACKGROUND
    stack = rng.poisson(img).astype(np.float32) + np.float32(OFFSET)
    stack = np.minimum(stack, 4095).astype(np.uint16)
    res = extract_psf(stack, voxel_size_um=vox, bead_diameter_um=0.1)
    reasons = dict(res.rejection_counts)
    assert reasons.get("saturated") == 1
    assert sum(reasons.get(k, 0) for k in ("bright", "shape", "residual")) == 1
    assert res.n_used == 3
    assert res.qc["left_out_mip"].any()
    assert abs(res.info["background"] - (OFFSET + BACKGROUND)) < 1.0
