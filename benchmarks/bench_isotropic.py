"""Self-Net isotropic restoration on simulated anisotropic stacks with an isotropic truth.

For each structure family (``puncta``: small objects, for the FWHM; ``filaments``) and each
anisotropy ratio (3 and 5): a truth on an isotropic grid (lateral voxel 0.1 µm in all three
directions) is blurred with an anisotropic Gaussian PSF whose axial FWHM is ``ratio`` × the
lateral one (0.25 µm), every ``ratio``-th plane is kept (z sampled ``ratio`` × coarser),
Poisson noise (peak 300 photons) plus read noise (σ 2) is added. Methods, all on the isotropic
grid: cubic z interpolation, RL (30 iterations, the true PSF) + cubic, Self-Net
(``nd.isotropic``, CPU preset, ``--steps``), RL + Self-Net. Scores against the truth after the
affine intensity fit: PSNR of the volume (its xz planes = its yz planes), mean 2D SSIM of the xz
and of the yz planes; for ``puncta`` the median axial and lateral FWHM of isolated objects.

    OMP_NUM_THREADS=1 python benchmarks/bench_isotropic.py --out benchmarks/_out/isotropic
    python benchmarks/bench_isotropic.py --time-only --threads 2   # the CPU preset on 64×512×512
    python benchmarks/bench_isotropic.py --diagnose --families puncta --ratios 3 --steps 1500
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

LATERAL_UM = 0.1
LATERAL_FWHM_UM = 0.25
SHAPE_ISO = (96, 128, 128)  # truth grid, isotropic 0.1 µm
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def make_case(family: str, ratio: int, seed: int = 0) -> dict:
    """Truth (isotropic grid), observed stack (z ``ratio`` × coarser) and the observed PSF."""
    from neurodecon.synth import phantom

    vox = (LATERAL_UM,) * 3
    nz = (SHAPE_ISO[0] - 1) // ratio * ratio + 1  # the sampled planes span the truth exactly
    truth = phantom(family, shape=(nz, *SHAPE_ISO[1:]), voxel_size_um=vox, seed=seed)
    s_lat = LATERAL_FWHM_UM / FWHM_PER_SIGMA / LATERAL_UM
    sigma = (ratio * s_lat, s_lat, s_lat)
    blurred = ndimage.gaussian_filter(truth.astype(np.float64), sigma, mode="constant")
    sampled = blurred[::ratio]
    rng = np.random.default_rng(seed + 1)
    photons = 300.0 / max(float(sampled.max()), 1e-12)
    observed = rng.poisson(sampled * photons + 2.0) + rng.normal(0.0, 2.0, sampled.shape)
    noise_free = sampled * photons + 2.0
    psf = _gaussian_psf((ratio * s_lat / ratio, s_lat, s_lat))  # on the observed grid
    reference = ndimage.gaussian_filter(truth.astype(np.float64), s_lat, mode="constant")
    return {
        "truth": truth.astype(np.float32),
        "reference": reference.astype(np.float32),  # the truth seen with the lateral PSF in 3D
        "observed": observed.astype(np.float32),
        "noise_free": noise_free.astype(np.float32),  # the same stack without its noise
        "voxel_size_um": (ratio * LATERAL_UM, LATERAL_UM, LATERAL_UM),
        "psf": psf,
    }


def _gaussian_psf(sigma_px) -> np.ndarray:
    half = [int(np.ceil(4 * s)) for s in sigma_px]
    grids = np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij")
    g = np.exp(-sum(x**2 / (2 * s**2) for x, s in zip(grids, sigma_px, strict=True)))
    return (g / g.sum()).astype(np.float32)


def run_methods(
    case: dict, steps: int, seed: int, rl_selfnet: bool = True, options: dict | None = None
) -> dict[str, tuple[np.ndarray, float]]:
    """Each method's isotropic volume and its seconds (``rl+selfnet`` unless told not to).

    ``options``: ``SelfNetConfig`` fields that replace the ``cpu`` preset's; ``seed`` seeds the
    training.
    """
    import neurodecon as nd
    from neurodecon.learn import SELFNET_PRESETS, z_interpolate

    obs, vox = case["observed"], case["voxel_size_um"]
    ratio = vox[0] / vox[2]
    cfg = SELFNET_PRESETS["cpu"].with_changes(steps=steps, **(options or {}))
    out: dict[str, tuple[np.ndarray, float]] = {}
    t0 = time.perf_counter()
    out["cubic"] = (z_interpolate(obs, ratio), time.perf_counter() - t0)
    t0 = time.perf_counter()
    rl = nd.deconvolve(obs, case["psf"], method="rl", iterations=30, background=2.0, device="cpu")
    t_rl = time.perf_counter() - t0
    out["rl+cubic"] = (z_interpolate(rl, ratio), t_rl)
    selfnets = (("selfnet", obs, 0.0), ("rl+selfnet", rl, t_rl))
    for name, data, extra in selfnets[: 2 if rl_selfnet else 1]:
        t0 = time.perf_counter()
        res = nd.isotropic(data, voxel_size_um=vox, config=cfg, device="cpu", seed=seed)
        out[name] = (res.data, extra + time.perf_counter() - t0)
    return out


def score(pred: np.ndarray, truth: np.ndarray, ratio: int) -> dict[str, float]:
    """PSNR of the volume and mean 2D SSIM of its xz and yz planes (z edges of ``ratio``
    planes left out), after the affine intensity fit to the truth."""
    from neurodecon.metrics import normalize_pair, psnr, ssim

    n = min(len(pred), len(truth))
    p, t = normalize_pair(pred[ratio : n - ratio], truth[ratio : n - ratio], "affine")
    xz = np.mean([ssim(p[:, y], t[:, y], data_range=1.0) for y in range(0, p.shape[1], 4)])
    yz = np.mean([ssim(p[:, :, x], t[:, :, x], data_range=1.0) for x in range(0, p.shape[2], 4)])
    return {"psnr": psnr(p, t, data_range=1.0), "ssim_xz": float(xz), "ssim_yz": float(yz)}


def object_fwhm(vol: np.ndarray, truth: np.ndarray, ratio: int) -> dict[str, float]:
    """Median axial (z) and lateral (x) FWHM in µm through isolated truth objects."""
    from neurodecon.metrics import line_profile_fwhm

    labels, n = ndimage.label(truth > 0.5 * truth.max())
    centres = ndimage.center_of_mass(truth, labels, range(1, n + 1))
    ax, lat, h = [], [], 8
    for c in centres:
        z, y, x = (int(round(v)) for v in c)
        if not (ratio + h <= z < len(vol) - h - ratio and h <= y < vol.shape[1] - h):
            continue
        if not h <= x < vol.shape[2] - h:
            continue
        if (labels[z - h : z + h, y - h : y + h, x - h : x + h] > 0).sum() > (
            labels == labels[z, y, x]
        ).sum():  # another object in the window
            continue
        ax.append(line_profile_fwhm(vol[z - h : z + h + 1, y, x], LATERAL_UM))
        lat.append(line_profile_fwhm(vol[z, y, x - h : x + h + 1], LATERAL_UM))
    ax_a, lat_a = np.array(ax), np.array(lat)
    ok = np.isfinite(ax_a) & np.isfinite(lat_a)
    return {
        "fwhm_axial_um": float(np.median(ax_a[ok])) if ok.any() else float("nan"),
        "fwhm_lateral_um": float(np.median(lat_a[ok])) if ok.any() else float("nan"),
        "objects": int(ok.sum()),
    }


def bench(
    families,
    ratios,
    steps: int,
    seed: int,
    out_dir: Path,
    rl_selfnet: bool = True,
    options: dict | None = None,
    train_seed: int | None = None,
) -> list[dict]:
    rows = []
    train_seed = seed if train_seed is None else train_seed
    for family in families:
        for ratio in ratios:
            case = make_case(family, ratio, seed)
            methods = run_methods(case, steps, train_seed, rl_selfnet, options)
            for method, (vol, secs) in methods.items():
                row = {"family": family, "ratio": ratio, "method": method, "seconds": secs}
                row.update(score(vol, case["truth"], ratio))
                ref = {f"{k}_ref": v for k, v in score(vol, case["reference"], ratio).items()}
                row.update(ref)
                if family == "puncta":
                    row.update(object_fwhm(vol, case["truth"][: len(vol)], ratio))
                rows.append(row)
                print(json.dumps(row), flush=True)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "results.json").write_text(json.dumps(rows, indent=1))
    return rows


def diagnose(family: str, ratio: int, steps: int, seed: int, options: dict | None) -> list[dict]:
    """How much of Self-Net's remaining error is the stack's noise, how much its intensity mapping.

    Trains the preset once on the noisy stack; then restores with that network the noisy stack
    and the same stack without its noise, each mapped to the network's [0, 1] range by its own
    ``stack_normalization`` (as ``nd.isotropic`` does) and by the other's; the noisy stack also
    without the background floor; cubic interpolation of both for comparison.
    """
    import neurodecon as nd
    from neurodecon.learn import (
        SELFNET_PRESETS,
        load_selfnet,
        restore_stack,
        stack_normalization,
        z_interpolate,
    )

    case = make_case(family, ratio, seed)
    vox = case["voxel_size_um"]
    cfg = SELFNET_PRESETS["cpu"].with_changes(steps=steps, **(options or {}))
    stacks = {"noisy": case["observed"], "noise-free": case["noise_free"]}
    norms = {k: stack_normalization(v) for k, v in stacks.items()}
    vols = {}
    with tempfile.TemporaryDirectory() as tmp:
        nd.isotropic(case["observed"], voxel_size_um=vox, config=cfg, device="cpu", seed=seed,
                     save_model=tmp, overwrite=True)  # fmt: skip
        net = load_selfnet(tmp).net
        cpu = torch.device("cpu")
        for stack, mapping in itertools.product(stacks, norms):
            out, _ = restore_stack(net, stacks[stack], ratio, device=cpu, norm=norms[mapping])
            vols[f"selfnet: {stack} stack, the {mapping} stack's mapping"] = out
        out, _ = restore_stack(net, stacks["noisy"], ratio, device=cpu, floor=False)
        vols["selfnet: noisy stack, its own mapping, not floored at the background"] = out
    for stack, vol in stacks.items():
        vols[f"cubic: {stack} stack"] = z_interpolate(vol, ratio)
    rows = []
    for name, vol in vols.items():
        row = {"input": name, **score(vol, case["truth"], ratio)}
        row["psnr_ref"] = score(vol, case["reference"], ratio)["psnr"]
        if family == "puncta":
            row.update(object_fwhm(vol, case["truth"][: len(vol)], ratio))
        rows.append(row)
        print(json.dumps(row), flush=True)
    for k, n in norms.items():
        print(f"{k} stack's mapping: 0 ↔ {n.low:.2f}, 1 ↔ {n.high:.2f}")
    return rows


def table(rows: list[dict], steps: int) -> str:
    head = (
        f"Truth {SHAPE_ISO[1]}×{SHAPE_ISO[2]} px, 0.1 µm isotropic; observed z every `ratio` "
        f"planes; Self-Net CPU preset, {steps} steps, 1 thread (`s`: wall seconds on a core shared "
        "with other jobs, not a speed measurement).\n\n"
        "PSNR / SSIM against the truth; `ref` columns against the truth blurred by the lateral "
        "PSF in all three directions (the isotropic image Self-Net aims at).\n\n"
        "| family | ratio | method | PSNR dB | SSIM xz | SSIM yz | PSNR ref | SSIM xz ref | "
        "axial FWHM µm | lateral FWHM µm | axial/lateral | s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        fa, fl = r.get("fwhm_axial_um", float("nan")), r.get("fwhm_lateral_um", float("nan"))
        lines.append(
            f"| {r['family']} | {r['ratio']} | {r['method']} | {r['psnr']:.2f} | "
            f"{r['ssim_xz']:.3f} | {r['ssim_yz']:.3f} | {r['psnr_ref']:.2f} | "
            f"{r['ssim_xz_ref']:.3f} | {fa:.3f} | {fl:.3f} | {fa / fl:.2f} | "
            f"{r['seconds']:.0f} |"
        )
    return head + "\n".join(lines)


def time_cpu_preset(
    out_dir: Path, ratio: float = 3.0, steps: int = 100, options: dict | None = None
) -> dict:
    """CPU and wall seconds of the CPU preset on a 64×512×512 stack, by phase.

    Process time (all threads together), so that other work on a shared core does not count,
    and wall time (for runs on an otherwise idle machine): the pairs from the stack, ``steps``
    training steps (the preset's full count extrapolated from their rate), and the restoration
    of every xz and yz plane (with the mapping to and from the stack's units and the background
    floor). ``options``: fields replacing the preset's.
    """
    from neurodecon.learn import SELFNET_PRESETS, SelfNetData, restore_stack, train_selfnet

    cfg = SELFNET_PRESETS["cpu"].with_changes(**(options or {}))
    rng = np.random.default_rng(0)
    stack = ndimage.gaussian_filter(rng.random((64, 512, 512), np.float32), (1.5, 1, 1)) * 1000
    clocks = [(time.process_time(), time.perf_counter())]
    data = SelfNetData.from_stack(stack, ratio)
    clocks.append((time.process_time(), time.perf_counter()))
    t = train_selfnet(data, cfg.with_changes(steps=steps), device=torch.device("cpu"))
    clocks.append((time.process_time(), time.perf_counter()))
    out, _ = restore_stack(t.result(), stack, ratio, device=torch.device("cpu"))
    clocks.append((time.process_time(), time.perf_counter()))
    rec: dict = {
        "shape_in": [64, 512, 512],
        "shape_out": list(out.shape),
        "ratio": ratio,
        "threads": torch.get_num_threads(),
        "options": options or {},
        "train_steps_preset": cfg.steps,
    }
    for i, clock in enumerate(("cpu", "wall")):
        pairs, train, restore = (clocks[j + 1][i] - clocks[j][i] for j in range(3))
        rec.update({
            f"pairs_{clock}_s": pairs,
            f"train_{clock}_s_per_step": train / steps,
            f"restore_{clock}_s": restore,
            f"total_{clock}_s_preset": pairs + train / steps * cfg.steps + restore,
        })  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cpu_time.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="puncta,filaments")
    ap.add_argument("--ratios", default="3,5")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0, help="the simulated case's (and training's)")
    ap.add_argument("--train-seed", type=int, help="Self-Net's training seed (default --seed)")
    ap.add_argument("--options", type=json.loads, default={},
                    help='SelfNetConfig fields replacing the cpu preset\'s, JSON, e.g. '
                    '\'{"rotate": true, "average_decay": 0, "lr": 2e-4}\'')  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("benchmarks/_out/isotropic"))
    ap.add_argument("--time-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--no-rl-selfnet", action="store_true", help="skip RL + Self-Net")
    ap.add_argument("--ceiling", action="store_true", help="score only the ideal isotropic "
                    "image (the truth blurred by the lateral PSF in 3D, noise-free)")  # fmt: skip
    ap.add_argument("--tables", type=Path, nargs="+", help="print the table of these runs' folders")
    ap.add_argument("--diagnose", action="store_true",
                    help="train once on the first family and ratio; restore its noisy and its "
                    "noise-free stack (how much is noise)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.tables:
        rows = [r for d in args.tables for r in json.loads((d / "results.json").read_text())]
        print(table(rows, args.steps))
        return
    if args.time_only:
        time_cpu_preset(args.out, options=args.options)
        return
    ratios = [int(r) for r in args.ratios.split(",")]
    if args.diagnose:
        rows = diagnose(args.families.split(",")[0], ratios[0], args.steps, args.seed, args.options)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "diagnose.json").write_text(json.dumps(rows, indent=1))
        return
    if args.ceiling:  # what a perfect isotropic restoration at the lateral resolution scores
        for family in args.families.split(","):
            for ratio in ratios:
                case = make_case(family, ratio, args.seed)
                ideal = case["reference"].astype(np.float32)
                print(json.dumps({"family": family, "ratio": ratio, "method": "ideal isotropic",
                                  **score(ideal, case["truth"], ratio)}))  # fmt: skip
        return
    rows = bench(args.families.split(","), ratios, args.steps, args.seed, args.out,
                 not args.no_rl_selfnet, args.options, args.train_seed)  # fmt: skip
    text = table(rows, args.steps)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
