"""Accuracy and speed of NeuroDecon's resolution metrics against known answers.

1. FSC (3D, anisotropic voxels) of two independently noisy copies of a volume band-limited at a
   known per-axis-normalised radius k_c: the recovered resolution vs 2 · voxel / k_c.
2. Decorrelation analysis of a single noisy 2D image band-limited at k_c: recovered k_c.
3. Decorrelation on real data (sdeconv pollen): the sharp volume, the published blurred + noisy
   observation and Gaussian-blurred copies, per plane.
4. Wall time of ``evaluate`` and of each metric on a 32×256×256 volume (pollen).

Usage::

    python benchmarks/metrics_accuracy.py [--data ../shared/data] [--out benchmarks/_out]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from neurodecon.metrics import (  # noqa: E402
    decorrelation,
    evaluate,
    frc_resolution,
    fsc,
    glcm_features,
    normalize_pair,
    shannon_entropy,
    ssim,
)


def band_limited(shape, kc, rng):
    grids = np.meshgrid(*[2 * np.fft.fftfreq(n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    s = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * (r < kc)))
    return (s / s.std()).astype(np.float32)


def fsc_table(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    shape, voxel = (32, 128, 128), (0.3, 0.1, 0.1)
    rows = []
    for kc in (0.3, 0.5, 0.7):
        s = band_limited(shape, kc, rng)
        for noise in (0.5, 1.0, 2.0):
            a = s + noise * rng.standard_normal(shape).astype(np.float32)
            b = s + noise * rng.standard_normal(shape).astype(np.float32)
            curve = fsc(a, b, voxel)
            row = {"kc": kc, "signal/noise std": 1 / noise}
            for thr in ("1/7", "half-bit"):
                z, _, x = frc_resolution(curve, threshold=thr)
                row[f"{thr} x err %"] = 100 * (x / (0.2 / kc) - 1)
                row[f"{thr} z err %"] = 100 * (z / (0.6 / kc) - 1)
            rows.append(row)
    return rows


def fsc_edges_table(seed: int) -> list[dict]:
    """Border treatment: a periodic volume, and a non-periodic crop of a larger one.

    The noise std is 1.
    """
    rng = np.random.default_rng(seed)
    voxel = (0.3, 0.1, 0.1)
    rows = []
    for kc in (0.3, 0.5):
        big = band_limited((48, 160, 160), kc, rng)
        for volume, s in (
            ("periodic 48×160×160", big),
            ("crop 32×120×120", big[8:40, 20:140, 20:140]),
        ):
            a = s + rng.standard_normal(s.shape).astype(np.float32)
            b = s + rng.standard_normal(s.shape).astype(np.float32)
            for edges in ("periodic", "tukey", "none"):
                z, _, x = frc_resolution(fsc(a, b, voxel, edges=edges), threshold="1/7")
                rows.append(
                    {
                        "kc": kc,
                        "volume": volume,
                        "edges": edges,
                        "x err %": 100 * (x / (0.2 / kc) - 1),
                        "z err %": 100 * (z / (0.6 / kc) - 1),
                    }
                )
    return rows


def decorr_table(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for kc in (0.2, 0.35, 0.5, 0.7):
        s = band_limited((256, 256), kc, rng)
        for noise in (0.3, 1.0, 3.0):
            res = decorrelation(s + noise * rng.standard_normal(s.shape).astype(np.float32))
            rows.append(
                {
                    "kc": kc,
                    "signal/noise std": 1 / noise,
                    "kc found": res.kc,
                    "err %": 100 * (res.kc / kc - 1),
                    "A0": res.snr,
                }
            )
    return rows


def pollen_table(data: Path) -> list[dict]:
    import tifffile

    gt = tifffile.imread(data / "sdeconv" / "pollen.tif").astype(np.float32)
    obs = tifffile.imread(data / "sdeconv" / "pollen_poisson_noise_blurred.tif").astype(np.float32)
    rng = np.random.default_rng(0)
    cases = {"pollen.tif (sharp)": gt, "pollen_poisson_noise_blurred.tif": obs}
    for sigma in (1.0, 2.0, 3.0):
        cases[f"sharp ⊛ Gaussian σ={sigma:g} px + noise"] = ndi.gaussian_filter(
            gt, sigma
        ) + rng.normal(0, 200, gt.shape).astype(np.float32)
    rows = []
    for name, x in cases.items():
        row = {"volume": name}
        for p in ("xy", "xz", "yz"):
            r = decorrelation(x, plane=p)
            row[f"kc {p}"] = r.kc
            row[f"A0 {p}"] = r.snr
        rows.append(row)
    return rows


def timing_table(data: Path, repeats: int) -> list[dict]:
    import tifffile

    gt = tifffile.imread(data / "sdeconv" / "pollen.tif").astype(np.float32)
    obs = tifffile.imread(data / "sdeconv" / "pollen_poisson_noise_blurred.tif").astype(np.float32)
    evaluate(obs[:8, :64, :64], gt[:8, :64, :64])  # warm-up (imports)
    jobs = {
        "normalize_pair (affine)": lambda: normalize_pair(obs, gt),
        "ssim (3D, 7³)": lambda: ssim(obs, gt, data_range=float(np.ptp(gt))),
        "fsc (3D)": lambda: fsc(obs, gt, 1.0),
        "decorrelation ×3 planes": lambda: [
            decorrelation(obs, plane=p) for p in ("xy", "xz", "yz")
        ],
        "glcm_features": lambda: glcm_features(obs),
        "shannon_entropy": lambda: shannon_entropy(obs),
        "evaluate (with truth)": lambda: evaluate(obs, gt),
        "evaluate (no truth)": lambda: evaluate(obs),
    }
    rows = []
    for name, fn in jobs.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows.append(
            {
                "step (32×256×256)": name,
                "median s": float(np.median(times)),
                "min s": float(np.min(times)),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = [lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)] * len(keys)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += [
        "| " + " | ".join(f(r[k]) for f, k in zip(fmt, keys, strict=True)) + " |" for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="also write JSON tables here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tables = {
        "FSC cut-off recovery (3D, voxel 0.3×0.1×0.1 µm, 32×128×128)": fsc_table(args.seed),
        "FSC border treatment (1/7 threshold, signal/noise std 1)": fsc_edges_table(args.seed),
        "Decorrelation cut-off recovery (2D 256×256)": decorr_table(args.seed),
    }
    if (args.data / "sdeconv" / "pollen.tif").exists():
        tables["Decorrelation on real data (pollen, 32×256×256, pixels)"] = pollen_table(args.data)
        tables["Wall time"] = timing_table(args.data, args.repeats)
    for title, rows in tables.items():
        print(f"\n### {title}\n\n{markdown(rows)}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics_accuracy.json").write_text(json.dumps(tables, indent=2))


if __name__ == "__main__":
    main()
