"""Classical deconvolution benchmark: speed, memory, iterations=auto and quality.

Usage (each part can run alone; ``--quick`` shrinks the anchor volume for a smoke run)::

    # anchor case: FFT floor, RL, rl-accel, skimage
    python benchmarks/bench_classical.py --speed
    # peak memory of rl / rl-accel (subprocesses)
    python benchmarks/bench_classical.py --memory
    # auto on the bars set, where the cap fires (auto vs the oracle on phantoms, and its cost:
    # benchmarks/bench_auto.py)
    python benchmarks/bench_classical.py --auto-bars
    # PSNR/SSIM per method on ground-truth sets
    python benchmarks/bench_classical.py --quality
    python benchmarks/bench_classical.py --all --out benchmarks/_out

The anchor case (issue 4 §5): 64×256×256 beads + tubes, generated 16 px larger per side and
cropped (light from outside enters the stack), Gaussian PSF σ = 1.5/1.5/4 px (x/y/z) in 33³,
background 5 photons/voxel, Poisson noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(
    os.environ.get(
        "NEURODECON_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
VOXEL_UM = (0.2, 0.1, 0.1)
PHOTONS = 1000.0
BACKGROUND = 5.0


# -- anchor case --------------------------------------------------------------------------------
def gaussian_psf(shape=(33, 33, 33), sigma=(4.0, 1.5, 1.5)) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    p = np.exp(
        -sum(g.astype(np.float64) ** 2 / (2 * s * s) for g, s in zip(grids, sigma, strict=True))
    )
    return (p / p.sum()).astype(np.float32)


def anchor_case(shape=(64, 256, 256), margin=16, seed=0, photons=PHOTONS):
    """(truth in photon units, noisy image, psf) of the anchor case."""
    from neurodecon.synth import forward_model, phantom

    big_shape = tuple(n + 2 * margin for n in shape)
    truth = phantom(["beads", "tubes"], shape=big_shape, voxel_size_um=VOXEL_UM, seed=seed)
    psf = gaussian_psf()
    image = forward_model(truth, psf, photons=photons, background=BACKGROUND, seed=seed + 1)
    crop = tuple(slice(margin, margin + n) for n in shape)
    truth = truth.astype(np.float32) * np.float32(photons / float(truth.max()))
    return np.ascontiguousarray(truth[crop]), np.ascontiguousarray(image[crop]), psf


def psnr(pred, truth) -> float:
    from neurodecon.metrics import psnr as _psnr

    return _psnr(pred, truth)


def ssim(pred, truth) -> float:
    from neurodecon.metrics import ssim as _ssim

    return _ssim(pred, truth)


def _best(times):
    return float(np.min(times)), float(np.median(times))


def time_it(fn, repeat=7):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return _best(ts)


# -- speed --------------------------------------------------------------------------------------
def fft_floor(padded_shape):
    """Time of one rfftn + irfftn pair on the padded grid, for each available library."""
    import scipy.fft
    import torch

    x = np.random.default_rng(0).random(padded_shape, dtype=np.float32)
    out = {}
    out["scipy.fft (workers=2)"] = time_it(
        lambda: scipy.fft.irfftn(scipy.fft.rfftn(x, workers=2), s=padded_shape, workers=2)
    )
    xt = torch.from_numpy(x)
    spec = torch.fft.rfftn(xt)
    res = torch.empty_like(xt)
    out["torch (MKL, out= buffers)"] = time_it(
        lambda: (torch.fft.rfftn(xt, out=spec), torch.fft.irfftn(spec, s=padded_shape, out=res))
    )
    try:
        import pyfftw  # noqa: F401  (optional, not a dependency)
    except ImportError:
        pass
    return out


def _iteration_times(dec, image, iterations):
    """Wall time between consecutive iterations (progress ticks; no copies): (min, median) s."""
    stamps = []
    dec(
        image,
        iterations=iterations,
        background=BACKGROUND,
        progress=lambda d, t, m: stamps.append(time.perf_counter()),
    )
    d = np.diff(stamps)
    return float(d.min()), float(np.median(d))


def speed(args):
    import torch

    from neurodecon.classical import Deconvolver

    shape = (32, 128, 128) if args.quick else (64, 256, 256)
    truth, image, psf = anchor_case(shape)
    print(f"## Speed: anchor case {shape}, torch threads {torch.get_num_threads()}")
    print("(machine shared with other processes: min = least disturbed, median = typical)")
    dec = Deconvolver(psf, image.shape, method="rl", device="cpu")
    acc = Deconvolver(psf, image.shape, method="rl-accel", device="cpu")
    padded = dec.op.shape
    rows = {"fft": {}, "rl": [], "acc": []}
    for _ in range(3):  # interleave so that load changes hit every measurement alike
        for name, t in fft_floor(padded).items():
            rows["fft"].setdefault(name, []).append(t)
        rows["rl"].append(_iteration_times(dec, image, 12))
        rows["acc"].append(_iteration_times(acc, image, 12))
    floors = {
        k: (min(v[0] for v in vals), float(np.median([v[1] for v in vals])))
        for k, vals in rows["fft"].items()
    }
    for name, (best, med) in floors.items():
        print(f"FFT pair {padded}: {name}: min {best * 1e3:.1f} ms, median {med * 1e3:.1f} ms")
    fastest = min(floors, key=lambda k: floors[k][0])
    floor, floor_med = 2 * floors[fastest][0], 2 * floors[fastest][1]
    rl_it = (min(r[0] for r in rows["rl"]), float(np.median([r[1] for r in rows["rl"]])))
    acc_it = (min(r[0] for r in rows["acc"]), float(np.median([r[1] for r in rows["acc"]])))
    print(
        f"FFT floor of one RL iteration (2 pairs, {fastest}): min {floor * 1e3:.1f} ms, "
        f"median {floor_med * 1e3:.1f} ms"
    )
    print(
        f"RL iteration (unknown boundary): min {rl_it[0] * 1e3:.1f} ms = "
        f"{rl_it[0] / floor:.2f} × floor; "
        f"median {rl_it[1] * 1e3:.1f} ms = {rl_it[1] / floor_med:.2f} × median floor"
    )
    print(f"rl-accel iteration: min {acc_it[0] * 1e3:.1f} ms, median {acc_it[1] * 1e3:.1f} ms")

    rl_curve = []
    dec(
        image,
        iterations=200,
        background=BACKGROUND,
        callback=lambda k, x: rl_curve.append(psnr(x, truth)) if k % 20 == 0 else None,
    )
    target = rl_curve[-1]
    print(f"plain RL@200: PSNR {target:.2f} dB (PSNR in photon units, data range = truth range)")
    curve = []
    acc(
        image,
        iterations=args.accel_iterations,
        background=BACKGROUND,
        callback=lambda k, x: curve.append((k, psnr(x, truth))),
    )
    hit = next((k for k, p in curve if p >= target), None)
    best_k, best_p = max(curve, key=lambda kp: kp[1])
    t_hit = None
    if hit is not None:
        t0 = time.perf_counter()
        acc(image, iterations=hit, background=BACKGROUND)
        t_hit = time.perf_counter() - t0
        print(
            f"rl-accel reaches plain-RL@200 PSNR after {hit} iterations: {t_hit:.2f} s wall "
            f"(whole call), {hit * acc_it[0]:.2f} s at the least-disturbed iteration time"
        )
    else:
        print("rl-accel does not reach plain-RL@200 PSNR")
    print(f"rl-accel best PSNR {best_p:.2f} dB at iteration {best_k}")
    # scikit-image side by side (its default clip=True clips to [-1, 1]: pass clip=False)
    from skimage.restoration import richardson_lucy

    pos = np.clip(image - BACKGROUND, 0, None)
    k = 3
    t0 = time.perf_counter()
    richardson_lucy(pos, psf, num_iter=k, clip=False)
    t_sk = (time.perf_counter() - t0) / k
    print(
        f"scikit-image richardson_lucy (float32, same volume): {t_sk * 1e3:.0f} ms per iteration "
        f"= {t_sk / rl_it[1]:.1f}× our median RL iteration"
    )
    return dict(
        shape=shape,
        padded=padded,
        floors=floors,
        floor_s=floor,
        rl_iter_s=rl_it,
        accel_iter_s=acc_it,
        ratio_min=rl_it[0] / floor,
        ratio_median=rl_it[1] / floor_med,
        rl200_psnr=target,
        accel_hit_iter=hit,
        accel_hit_s=t_hit,
        accel_best_psnr=best_p,
        accel_best_iter=best_k,
        skimage_iter_s=t_sk,
    )


# -- memory -------------------------------------------------------------------------------------
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(field)


def memory_child(method: str, quick: bool) -> None:
    """Runs in a fresh process: peak RSS growth during one deconvolution, in padded volumes."""
    import torch

    from neurodecon.classical import Deconvolver, plan_geometry

    shape = (32, 128, 128) if quick else (64, 256, 256)
    truth, image, psf = anchor_case(shape)
    del truth
    torch.fft.irfftn(torch.fft.rfftn(torch.zeros(8, 8, 8)))  # load MKL before the baseline
    geo = plan_geometry(image.shape, psf.shape, "unknown")
    volume = int(np.prod(geo.padded_shape)) * 4
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
    base = _rss_kib("VmRSS:")
    dec = Deconvolver(psf, image.shape, method=method, device="cpu")
    dec(image, iterations=5, background=BACKGROUND)
    peak = _rss_kib("VmHWM:")
    print(
        json.dumps(
            {
                "method": method,
                "peak_growth_bytes": (peak - base) * 1024,
                "padded_volume_bytes": volume,
                "volumes": (peak - base) * 1024 / volume,
                "output_volumes": image.nbytes / volume,
            }
        )
    )


def memory(args):
    print(
        "## Memory: peak RSS growth of one deconvolution (fresh process), in padded float32 volumes"
    )
    rows = []
    for method in ("rl", "rl-accel"):
        cmd = [sys.executable, __file__, "--memory-child", method] + (
            ["--quick"] if args.quick else []
        )
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{method}: {row['peak_growth_bytes'] / 2**20:.0f} MiB = "
            f"{row['volumes']:.2f} padded volumes "
            f"(of which the returned result {row['output_volumes']:.2f})"
        )
    return rows


# -- iterations=auto ------------------------------------------------------------------------------
def auto_bars(args):
    """``auto`` on the flowdec bars set, where the mismatched-PSF cap fires: the RL and rl-accel
    PSNR curves far past the quality table's caps, and the held-out curve's statistics."""
    from neurodecon.classical import Deconvolver
    from neurodecon.classical.stopping import auto_iterations, gain_fraction_iteration, tail_gain

    name, img, psf, truth, bg = next(s for s in quality_sets(False) if "bars" in s[0])
    img = img.astype(np.float32)
    print(f"## iterations=auto on {name}")
    out = {}
    for method, cap in (("rl", 1500), ("rl-accel", 150)):
        curve = []
        dec = Deconvolver(psf, img.shape, method=method, device="cpu")
        dec(
            img,
            iterations=cap,
            background=bg,
            callback=lambda k, x, c=curve: c.append(_score(x, truth)[0]) if k % 5 == 0 else None,
        )
        best = int(np.argmax(curve))
        res = dec(img, iterations="auto", background=bg, return_result=True)
        k_auto, p_auto = res.iterations, _score(res.data, truth)[0]
        out[method] = dict(curve=curve, best_iter=5 * (best + 1), best_psnr=curve[best],
                           auto_iter=k_auto, auto_psnr=p_auto)  # fmt: skip
        at = {
            k: round(curve[k // 5 - 1], 2)
            for k in (25, 50, 100, 150, 300, 600, 1000, 1500)
            if k <= cap
        }
        print(
            f"{method}: best {curve[best]:.2f} dB at {5 * (best + 1)} it (every 5th); "
            f"auto {k_auto} it {p_auto:.2f} dB; PSNR at {at}"
        )
    dec = Deconvolver(psf, img.shape, method="rl", device="cpu")
    for seed in range(args.auto_seeds):
        k, k_half, ll = auto_iterations(dec, img, bg, seed=seed, return_curve=True)
        print(
            f"seed {seed}: RL auto {k} it, half-data maximum {k_half} of {len(ll)}, "
            "second-half gain "
            f"{tail_gain(ll):.2e} of the total, k99 {gain_fraction_iteration(ll, 0.01)}"
        )
    return out


# -- quality --------------------------------------------------------------------------------------
def quality_sets(quick: bool):
    import tifffile

    sets = []
    d = DATA / "flowdec" / "bars-25pct"
    if d.is_dir():
        sets.append(
            (
                "flowdec bars-25pct",
                tifffile.imread(d / "data.tif"),
                tifffile.imread(d / "kernel.tif"),
                tifffile.imread(d / "actual.tif"),
                0.0,
            )
        )
    d = DATA / "sdeconv"
    if d.is_dir():
        crop = (slice(None), slice(64, 192), slice(64, 192))  # the central 128×128 (time budget)
        img = tifffile.imread(d / "pollen_poisson_noise_blurred.tif")[crop]
        psf = tifffile.imread(d / "pollen_psf.tif")
        gt = tifffile.imread(d / "pollen.tif").astype(np.float32)[crop]
        sets.append(("sdeconv pollen (central 32×128×128)", img, psf, gt, 0.0))
    d = DATA / "redlionfish"
    if d.is_dir():
        img = tifffile.imread(d / "gendata_psfconv_poiss.tif").astype(np.float32)[:84, :84, :84]
        psf = tifffile.imread(d / "PSF_RFI_8bit.tif").astype(np.float32)
        psf = np.clip(psf - np.median(psf), 0, None)  # the 8-bit PSF has an offset of about 13
        gt = np.zeros(img.shape, np.float32)
        for z in (5, 72):  # the 8 cubes of the cropped 84³ corner (of 27 in 160³)
            for y in (5, 72):
                for x in (5, 72):
                    gt[z : z + 2, y : y + 2, x : x + 2] = 1.0
        sets.append(("redlionfish cubes (84³ corner)", img, psf, gt, "auto"))
    truth, img, psf = anchor_case((32, 128, 128), seed=3)
    sets.append(("phantom beads+tubes 32×128×128", img, psf, truth, BACKGROUND))
    return sets


GRID = {
    "nif": [1e-2, 3e-2, 1e-1],
    "wiener": [None, 3.0, 10.0],
    "tikhonov": [None, 1e-2, 1e-1],
    "rif": [None, 1e-3, 1e-2],
    "landweber": [None],
    "landweber+": [None],
    "rl": [None],
    "rl-accel": [None],
    "tm": [None, 1e-3],
    "ictm": [None, 1e-3],
    "rltv": [None, 1e-2],
}
MAX_IT = {
    "landweber": 150,
    "landweber+": 150,
    "tm": 150,
    "ictm": 150,
    "rl": 200,
    "rltv": 150,
    "rl-accel": 60,
}


def _score(pred, truth):
    from neurodecon.metrics import normalize_pair

    p, t = normalize_pair(pred, truth, "affine")
    return psnr(p, t), p, t


def _path(dec, img, bg, truth, iterations, keep=()):
    """PSNR every 5 iterations (and at the iterations in ``keep``): [(psnr, k, estimate)]."""
    curve = []

    def cb(k, x):
        if k % 5 == 0 or k in keep:
            curve.append((_score(x, truth)[0], k, x))

    dec(img, iterations=iterations, background=bg, callback=cb)
    return curve


def quality(args):
    from neurodecon.classical import METHODS, Deconvolver, estimate_background, stopping
    from neurodecon.metrics import normalize_pair

    stopping.MAX_AUTO_ITERATIONS = args.auto_budget
    print("## Quality: PSNR/SSIM (affine-normalised to the truth, as metrics.evaluate) per method")
    print(
        "best = best regularisation (small grid) and iteration count against the truth (oracle); "
        "auto = default regularisation with iterations='auto' "
        f"(cross-validation budget {args.auto_budget})"
    )
    rows = []
    for name, img, psf, truth, bg in quality_sets(args.quick):
        if args.sets and not any(key in name for key in args.sets):
            continue
        img = img.astype(np.float32)
        b = estimate_background(img) if bg == "auto" else bg
        p_raw, _, _ = _score(img - b, truth)
        print(
            f"\n### {name} {img.shape}: raw data PSNR {p_raw:.2f} dB, background {b:.4g}",
            flush=True,
        )
        for method in METHODS:
            t0 = time.perf_counter()
            results = []  # (psnr, reg, k, x)
            auto = None
            for reg in GRID[method]:
                dec = Deconvolver(psf, img.shape, method=method, regularization=reg, device="cpu")
                if method in MAX_IT:
                    keep = ()
                    warm = reg is None and method in stopping.CONTINUATION
                    if warm:  # auto continues its cross-validation's estimate: run it
                        res = dec(img, iterations="auto", background=b, return_result=True)
                        auto = (_score(res.data, truth)[0], res.iterations, res.data)
                    elif reg is None:
                        k_auto = stopping.auto_iterations(dec, img, b)
                        keep = (k_auto,)
                    curve = _path(
                        dec, img, b, truth, max(MAX_IT[method], max(keep, default=0)), keep
                    )
                    if reg is None and not warm:
                        auto = next(c for c in curve if c[1] == k_auto)
                    results += [(p, reg, k, x) for p, k, x in curve if k <= MAX_IT[method]]
                else:
                    x = dec(img, background=b)
                    results.append((_score(x, truth)[0], reg, 0, x))
                    if reg is None:
                        auto = (results[-1][0], 0, x)
            best = max(results, key=lambda r: r[0])
            if auto is None:  # nif has no data-driven default: its default ε
                x = Deconvolver(psf, img.shape, method=method, device="cpu")(img, background=b)
                auto = (_score(x, truth)[0], 0, x)
            elapsed = time.perf_counter() - t0
            s_best = ssim(*normalize_pair(best[3], truth, "affine"))
            s_auto = ssim(*normalize_pair(auto[2], truth, "affine"))
            row = dict(
                set=name,
                method=method,
                best_psnr=best[0],
                best_ssim=s_best,
                best_reg=best[1],
                best_iter=best[2],
                auto_psnr=auto[0],
                auto_ssim=s_auto,
                auto_iter=auto[1] if method in MAX_IT else None,
            )
            rows.append(row)
            reg = "default" if best[1] is None else f"{best[1]:g}"
            it = f", {best[2]} it" if method in MAX_IT else ""
            auto_it = f" ({row['auto_iter']} it)" if method in MAX_IT else " (default λ)"
            print(
                f"{method:11s} best {best[0]:6.2f} dB SSIM {s_best:.3f} [λ {reg}{it}] | "
                f"auto {auto[0]:6.2f} dB SSIM {s_auto:.3f}{auto_it} | {elapsed:.0f} s",
                flush=True,
            )
            del results
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument(
        "--auto-bars",
        action="store_true",
        help="auto on the flowdec bars set: long RL / rl-accel curves, held-out statistics",
    )
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smaller anchor volume (smoke run)")
    ap.add_argument("--accel-iterations", type=int, default=120)
    ap.add_argument(
        "--auto-seeds",
        type=int,
        default=3,
        help="--auto-bars: binomial-thinning seeds of the held-out statistics (default 3)",
    )
    ap.add_argument(
        "--auto-budget",
        type=int,
        default=1000,
        help="--quality: cross-validation budget of iterations=auto (the library's: 1000)",
    )
    ap.add_argument(
        "--sets",
        nargs="*",
        default=None,
        help="quality: only the sets whose name contains one of these words",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.quick)
        return
    results = {}
    for part, fn in (
        ("speed", speed),
        ("memory", memory),
        ("auto_bars", auto_bars),
        ("quality", quality),
    ):
        if args.all or getattr(args, part):
            results[part] = fn(args)
            print(flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_classical.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
