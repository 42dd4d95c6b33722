"""Bead PSFs judged by the deconvolution they give: joint vs per-bead average vs the true PSF.

Usage (one microscope per run keeps each run under ~10 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_beads_joint.py --microscope widefield [--seeds 0 1]
    .venv/bin/python benchmarks/bench_beads_joint.py --microscope confocal-sa
    .venv/bin/python benchmarks/bench_beads_joint.py --microscope confocal-water
    .venv/bin/python benchmarks/bench_beads_joint.py --deep          # hybrid tails
    .venv/bin/python benchmarks/bench_beads_joint.py --real [--out benchmarks/_out]
    .venv/bin/python benchmarks/bench_beads_joint.py --demo          # `neurodecon demo`'s beads

Simulated microscopes (helpers in ``tests/unit/test_beads_joint.py``): 40×192×192 bead stacks
with 12 beads of 100 nm at random positions (≥ 0.8 µm apart; Fourier-exact spheres ⊛ the true PSF),
1500 photons at the brightest bead's peak, background 2, camera offset 100, read noise 2. The true
PSF box is 79×383×383 (every offset between two voxels of the stack: the widefield cone is not
cut). Test sample: filaments + puncta (density 0.3, 0.065 µm feature unit), 40×192×192, same PSF,
30000 (widefield) / 10000 (confocal) photons, same camera. RL 100 iterations, background 102,
PSNR/SSIM after ``normalize_pair`` (affine). Every PSF goes through ``resolve_psf`` (crop to the
image). Flux-per-plane error: |flux_extracted / flux_true − 1| per plane of the 39-plane box the
image uses, both peak-centred and normalised on that box (mean and max).

``--deep``: widefield beads all on one plane (a coverslip), 40-plane bead stack, 80-plane sample:
the measured PSF reaches ±20 planes; the image needs ±39. Compares the measured-only PSF with the
hybrid one (optics given) and the true PSF.

``--demo``: the data of ``neurodecon demo`` (confocal NA 1.4, 0.1×0.05×0.05 µm, ~30 beads of
100 nm in 40×192×192 with 1200 photons at the brightest voxel, background 5, read noise 1, no
offset; the sample: sponge + puncta 40×160×160, 300 photons). RL 50 iterations (the demo's count)
with the background 0, the true 5 and ``auto`` (what the demo uses), for the true PSF, the joint
and the average PSF; the share of each PSF's flux within 2 voxels of its centre (5×5×5).

``--real``: the real bead stacks of ../shared/data: QC figure and flux per plane (at ±0.5, 1, 2,
4 µm relative to the focal plane), joint and average, and the time.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHAPE = (40, 192, 192)
ALIASES = {
    "widefield": "widefield NA 1.3 oil",
    "confocal-sa": "confocal NA 1.4 oil, 0.35 waves spherical",
    "confocal-water": "confocal NA 1.2 water",
}


def _helpers():
    path = REPO / "tests" / "unit" / "test_beads_joint.py"
    spec = importlib.util.spec_from_file_location("tbj", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _flux_error(psf, true_big, planes: int) -> tuple[float, float]:
    from neurodecon.psf import center_crop, prepare_psf

    t = prepare_psf(true_big, image_shape=true_big.shape).astype(np.float64)
    box = (min(planes, psf.shape[0]), psf.shape[1], psf.shape[2])
    a = center_crop(psf.astype(np.float64), box)
    t = center_crop(t, box)
    err = np.abs((a.sum((1, 2)) / a.sum()) / (t.sum((1, 2)) / t.sum()) - 1)
    return float(err.mean()), float(err.max())


def simulated(name: str, seeds, iterations: int) -> None:
    from neurodecon.psf import resolve_psf

    tbj = _helpers()
    vox = tbj.MICROSCOPES[name]["voxel_size_um"]
    t0 = time.perf_counter()
    true_big = tbj.true_psf(name, SHAPE)
    print(f"# {name}: true PSF {true_big.shape} in {time.perf_counter() - t0:.1f} s", flush=True)
    print(
        "| microscope | seed | PSF | beads used | shape | flux/plane error mean / max "
        "| extract s | PSNR | SSIM | ΔPSNR | ΔSSIM |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        stack, _ = tbj.bead_stack(name, true_big, SHAPE, n_beads=12, seed=seed)
        truth, image = tbj.sample(name, true_big, SHAPE, seed=seed + 1)
        ref = tbj.rl_scores(image, truth, true_big, vox, iterations)
        print(
            f"| {name} | {seed} | true | – | {SHAPE} | – | – | {ref[0]:.2f} | {ref[1]:.3f} | | |",
            flush=True,
        )
        for method in ("joint", "average"):
            t1 = time.perf_counter()
            r = resolve_psf(
                image_shape=SHAPE,
                image_voxel_size_um=vox,
                beads=stack,
                bead_diameter_um=0.1,
                beads_voxel_size_um=vox,
                bead_options={"method": method},
            )
            te = time.perf_counter() - t1
            fe = _flux_error(r.psf, true_big, 2 * (SHAPE[0] // 2) - 1)
            sc = tbj.rl_scores(image, truth, r.psf, vox, iterations)
            print(
                f"| {name} | {seed} | {method} | {r.beads.n_used} | {tuple(r.psf.shape)} | "
                f"{fe[0]:.3f} / {fe[1]:.3f} | {te:.1f} | {sc[0]:.2f} | {sc[1]:.3f} | "
                f"{sc[0] - ref[0]:+.2f} | {sc[1] - ref[1]:+.3f} |",
                flush=True,
            )


def deep(iterations: int) -> None:
    """Beads on one plane, a sample twice as deep: measured-only vs hybrid vs true PSF."""
    from neurodecon.psf import resolve_psf

    tbj = _helpers()
    name = ALIASES["widefield"]
    m = tbj.MICROSCOPES[name]
    vox = m["voxel_size_um"]
    deep_shape = (80, SHAPE[1], SHAPE[2])
    true_big = tbj.true_psf(name, deep_shape)
    rng = np.random.default_rng(5)
    centres = []
    while len(centres) < 12:
        c = np.array([SHAPE[0] / 2 + rng.uniform(-0.5, 0.5), *rng.uniform(3, SHAPE[1] - 4, 2)])
        if all(np.linalg.norm((c - o) * np.asarray(vox)) >= 0.8 for o in centres):
            centres.append(c)
    amps = rng.uniform(0.7, 1.3, 12)
    img = tbj.blur_points(SHAPE, true_big, vox, centres, amps, 0.1)
    expected = img * (1500.0 * amps.max() / img.max()) + tbj.BACKGROUND
    stack = rng.poisson(expected).astype(np.float32) + np.float32(tbj.OFFSET)
    stack += rng.normal(0, tbj.READ_NOISE, SHAPE).astype(np.float32)
    truth, image = tbj.sample(name, true_big, deep_shape, seed=9)
    ref = tbj.rl_scores(image, truth, true_big, vox, iterations)
    print(
        "| widefield, beads on one plane, 80-plane sample | PSF | shape | flux/plane error "
        "mean / max | PSNR | SSIM | ΔPSNR | ΔSSIM |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(f"| | true | {true_big.shape} | – | {ref[0]:.2f} | {ref[1]:.3f} | | |", flush=True)
    for label, optics in (
        ("measured only", None),
        ("hybrid", {**m["optics"], "model": "widefield"}),
    ):
        r = resolve_psf(
            image_shape=deep_shape,
            image_voxel_size_um=vox,
            beads=stack,
            bead_diameter_um=0.1,
            beads_voxel_size_um=vox,
            bead_optics=optics,
        )
        fe = _flux_error(r.psf, true_big, 79)
        sc = tbj.rl_scores(image, truth, r.psf, vox, iterations)
        print(
            f"| | {label} | {tuple(r.psf.shape)} | {fe[0]:.3f} / {fe[1]:.3f} | {sc[0]:.2f} | "
            f"{sc[1]:.3f} | {sc[0] - ref[0]:+.2f} | {sc[1] - ref[1]:+.3f} |",
            flush=True,
        )


REAL = [
    (
        "PSF-Extractor widefield NA 0.95, 200 nm",
        "psf_extractor_hoogenboom/sample_zstack",
        (0.3, 0.108, 0.108),
        0.2,
    ),
    ("MPI-CBG confocal, 4 beads", "bioimage_analysis_notebooks/Bead_Image1_crop.tif", None, 0.1),
    ("FRT Leica confocal NA 1.4", "FRT_simple_psf_extractor/tiff_series_project", None, 0.1),
]


def real(data: Path, out: Path | None, skip_frt: bool) -> None:
    import neurodecon as nd
    from neurodecon.cli._beads import flux_decay
    from neurodecon.psf import bead_qc_figure, extract_psf

    print(
        "| stack | method | used | left out | shape | background | flux per plane at ±0.5 / 1 "
        "/ 2 / 4 µm (focal plane = 1) | FWHM p z/y/x µm | extract s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rel, vox, diameter in REAL:
        if skip_frt and rel.startswith("FRT"):
            continue
        image = nd.read(data / rel, voxel_size_um=vox)
        for method in ("joint", "average"):
            t0 = time.perf_counter()
            r = extract_psf(image, bead_diameter_um=diameter, method=method)
            te = time.perf_counter() - t0
            f = r.flux_per_plane if r.flux_per_plane is not None else r.psf.sum(axis=(1, 2))
            dec = flux_decay(f, r.voxel_size_um[0])
            decay = " / ".join(f"{dec[k]:.3g}" if k in dec else "–" for k in (0.5, 1.0, 2.0, 4.0))
            left = ", ".join(f"{k}: {v}" for k, v in sorted(r.rejection_counts.items())) or "–"
            bg = r.info.get("background")
            print(
                f"| {name} | {method} | {r.n_used} | {left} | {tuple(r.psf.shape)} | "
                f"{'–' if method == 'average' else f'{bg:.3g}'} | {decay} | "
                f"{' / '.join(f'{v:.3f}' for v in r.psf_fwhm_um)} | {te:.1f} |",
                flush=True,
            )
            if out is not None and method == "joint":
                out.mkdir(parents=True, exist_ok=True)
                bead_qc_figure(
                    r, image, out / f"beads_joint_qc_{rel.split('/')[0]}.png", log_scale=True
                )


def demo() -> None:
    """The demo's beads: RL 50 with the true, joint and average PSF, three backgrounds."""
    from neurodecon import deconvolve
    from neurodecon.metrics import evaluate
    from neurodecon.psf import resolve_psf
    from neurodecon.report import demo_data

    d = demo_data()
    vox = d["voxel_size_um"]
    print(
        "| PSF | beads used | shape | extract s | central 5³ flux | RL50 bg 0 | bg 5 (true) "
        "| bg auto |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method in ("true", "joint", "average"):
        te, used = 0.0, "–"
        if method == "true":
            psf = d["psf"]
        else:
            t1 = time.perf_counter()
            r = resolve_psf(
                image_shape=d["sample"].shape,
                image_voxel_size_um=vox,
                beads=d["beads"],
                bead_diameter_um=d["bead_diameter_um"],
                beads_voxel_size_um=vox,
                bead_options={"method": method},
            )
            te, psf, used = time.perf_counter() - t1, r.psf, str(r.beads.n_used)
        p = psf / psf.sum()
        c = [n // 2 for n in p.shape]
        core = float(p[tuple(slice(k - 2, k + 3) for k in c)].sum())
        cells = []
        for bg in (0.0, 5.0, "auto"):
            out = deconvolve(d["sample"], psf=psf, method="rl", iterations=50, background=bg)
            e = evaluate(np.asarray(out), d["truth"], voxel_size_um=vox)
            cells.append(f"{e['psnr']:.2f} / {e['ssim']:.3f}")
        print(
            f"| {method} | {used} | {tuple(psf.shape)} | {te:.1f} | {core:.3f} | "
            + " | ".join(cells)
            + " |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--microscope", choices=sorted(ALIASES), action="append", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--deep", action="store_true", help="hybrid tails on an 80-plane sample")
    ap.add_argument("--real", action="store_true", help="the real bead stacks")
    ap.add_argument("--demo", action="store_true", help="the beads of `neurodecon demo`")
    ap.add_argument("--skip-frt", action="store_true")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="folder for QC figures (--real)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    for key in args.microscope or []:
        simulated(ALIASES[key], args.seeds, args.iterations)
    if args.deep:
        deep(args.iterations)
    if args.real:
        real(args.data, args.out, args.skip_frt)
    if args.demo:
        demo()


if __name__ == "__main__":
    main()
