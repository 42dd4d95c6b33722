"""Imaging physics benchmark: PSF model speed and accuracy, phantom speed, forward-model fidelity.

Prints markdown tables (and writes them to ``benchmarks/_out/psf_models.md`` with ``--save``):

1. each PSF model at 64×128×128 (NA 1.4, λ 0.52 µm, oil, 0.1/0.05 µm voxels): time, FWHM (z, y, x)
   by Gaussian fit (``neurodecon.metrics.bead_fwhm``) and, for the widefield model, the direct
   half-maximum width against the textbook values 0.51 λ/NA and 0.88 λ/(n − √(n² − NA²));
2. our Born–Wolf integral against psfmodels' scalar Gibson–Lanni (no mismatch) — normalised
   cross-correlation over several NA/λ/n settings — and against the EPFL PSFGenerator PSF in
   ``../shared/data/flowdec/psfs/psfgen1.tif``;
3. phantom generation time at 64×256×256 and the fraction of random 32×64×64 crops that contain
   structure;
4. the forward model against the two published simulations in ``../shared/data``.

Run: ``.venv/bin/python benchmarks/bench_psf_models.py [--save] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from neurodecon.metrics import bead_fwhm
from neurodecon.psf import born_wolf_psf, make_psf, textbook_fwhm_um
from neurodecon.synth import PHANTOMS, forward_model, phantom

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def half_max_width(p: np.ndarray, spacing: float) -> float:
    p = np.asarray(p, np.float64) / np.max(p)
    c = int(np.argmax(p))
    r = c
    while p[r + 1] > 0.5:
        r += 1
    left = c
    while p[left - 1] > 0.5:
        left -= 1
    return (
        (r + (p[r] - 0.5) / (p[r] - p[r + 1])) - (left - (p[left] - 0.5) / (p[left] - p[left - 1]))
    ) * spacing


def ncc(a, b) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def best_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def table_models(repeat: int) -> list[str]:
    shape, vox = (64, 128, 128), (0.1, 0.05, 0.05)
    ax, lat, _ = textbook_fwhm_um(1.4, 0.52, 1.515)
    rows = [
        "| model | options | time (s) | FWHM z / y / x (µm, Gaussian fit) | sum | peak at n//2 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    cases = [
        ("gaussian", {}),
        ("widefield", {}),
        ("gibson-lanni", {}),
        ("gibson-lanni", {"sample_index": 1.33, "depth_um": 10.0}),
        ("confocal", {"excitation_wavelength_um": 0.488, "pinhole_au": 1.0}),
        ("two-photon", {"excitation_wavelength_um": 0.92}),
    ]
    for model, opts in cases:
        t, psf = best_time(
            lambda m=model, o=opts: make_psf(m, shape=shape, voxel_size_um=vox, **o), repeat
        )
        f = bead_fwhm(psf, vox, center=(32, 64, 64))
        peak = np.unravel_index(int(np.argmax(psf)), psf.shape) == (32, 64, 64)
        label = ", ".join(f"{k}={v}" for k, v in opts.items()) or "–"
        rows.append(
            f"| {model} | {label} | {t:.3f} | {f[0]:.3f} / {f[1]:.3f} / {f[2]:.3f} | "
            f"{float(psf.sum(dtype=np.float64)):.6f} | {'yes' if peak else 'NO'} |"
        )
    rows.append("")
    rows.append(
        f"Textbook widefield FWHM for these optics: axial {ax:.3f} µm, lateral {lat:.3f} µm."
    )
    return rows


def table_textbook() -> list[str]:
    rows = [
        "| NA | λ (µm) | n | lateral FWHM / textbook | axial FWHM / textbook |",
        "| --- | --- | --- | --- | --- |",
    ]
    for na, wl, n in [
        (1.4, 0.52, 1.515),
        (1.2, 0.6, 1.33),
        (1.0, 0.5, 1.33),
        (0.8, 0.45, 1.0),
        (0.5, 0.65, 1.0),
    ]:
        ax, lat, _ = textbook_fwhm_um(na, wl, n)
        vox = (ax / 8, lat / 8, lat / 8)
        psf = make_psf(
            "widefield",
            shape=(65, 65, 65),
            voxel_size_um=vox,
            na=na,
            wavelength_um=wl,
            immersion_index=n,
        )
        rows.append(
            f"| {na} | {wl} | {n} | {half_max_width(psf[32, 32, :], vox[2]) / lat:.3f} | "
            f"{half_max_width(psf[:, 32, 32], vox[0]) / ax:.3f} |"
        )
    return rows


def table_agreement(repeat: int) -> list[str]:
    rows = [
        "| NA | λ (µm) | n | voxel (µm) | NCC ours vs psfmodels | ours (s) | psfmodels (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for na, wl, n, vox in [
        (1.4, 0.52, 1.515, (0.1, 0.04, 0.04)),
        (1.2, 0.6, 1.33, (0.15, 0.05, 0.05)),
        (0.9, 0.6, 1.0, (0.25, 0.08, 0.08)),
        (0.5, 0.45, 1.0, (0.4, 0.1, 0.1)),
    ]:
        kw = {
            "shape": (64, 128, 128),
            "voxel_size_um": vox,
            "na": na,
            "wavelength_um": wl,
            "immersion_index": n,
        }
        t1, ours = best_time(lambda kw=kw: make_psf("widefield", **kw), repeat)
        t2, theirs = best_time(
            lambda kw=kw, n=n: make_psf("gibson-lanni", sample_index=n, **kw), repeat
        )
        rows.append(
            f"| {na} | {wl} | {n} | {vox} | {ncc(ours, theirs):.5f} | {t1:.3f} | {t2:.3f} |"
        )
    ref_path = SHARED / "flowdec" / "psfs" / "psfgen1.tif"
    if ref_path.exists():
        import tifffile

        ref = tifffile.imread(ref_path)
        ours = born_wolf_psf(
            (17, 33, 33),
            (0.125, 0.05, 0.05),
            na=1.4,
            wavelength_um=0.61,
            immersion_index=1.515,
            oversample=1,
        )[1::2, 1::2, 1::2]
        rows.append("")
        rows.append(
            f"Against EPFL PSFGenerator (Gibson–Lanni, NA 1.4, 610 nm, 8×16×16, "
            f"`flowdec/psfs/psfgen1.tif`): NCC {ncc(ours, ref):.4f}."
        )
    return rows


def table_phantoms(repeat: int) -> list[str]:
    rows = [
        "| phantom | time 64×256×256 (s) | foreground (> 0.1) | crops 32×64×64 with structure |",
        "| --- | --- | --- | --- |",
    ]
    rng = np.random.default_rng(0)
    vox = (0.2, 0.1, 0.1)
    for name in [*PHANTOMS, "ellipsoids,tubes,filaments,puncta"]:
        t, vol = best_time(
            lambda name=name: phantom(name, shape=(64, 256, 256), voxel_size_um=vox, seed=1), repeat
        )
        hits = 0
        for _ in range(100):
            z, y, x = rng.integers(0, 33), rng.integers(0, 193), rng.integers(0, 193)
            hits += (vol[z : z + 32, y : y + 64, x : x + 64] > 0.1).mean() > 0.002
        rows.append(f"| {name} | {t:.2f} | {(vol > 0.1).mean():.3f} | {hits} % |")
    rows.append("")
    rows.append(
        "Voxel 0.2 × 0.1 × 0.1 µm; a crop “has structure” when > 0.2 % of its voxels exceed 0.1."
    )
    return rows


def table_forward() -> list[str]:
    import tifffile

    rows = [
        "| data set | forward model | correlation with the published image | time (s) |",
        "| --- | --- | --- | --- |",
    ]
    d = SHARED / "sdeconv"
    if d.exists():
        gt = tifffile.imread(d / "pollen.tif").astype(np.float32)
        obs = tifffile.imread(d / "pollen_poisson_noise_blurred.tif")
        psf = tifffile.imread(d / "pollen_psf.tif")
        t0 = time.perf_counter()
        sim = forward_model(gt, psf, photons=float(gt.max()), seed=0)
        t = time.perf_counter() - t0
        rows.append(
            f"| sdeconv pollen 32×256×256 | zero boundary, Poisson at max = 65535 | "
            f"{np.corrcoef(sim.ravel(), obs.ravel())[0, 1]:.4f} | {t:.2f} |"
        )
    d = SHARED / "flowdec" / "bars-25pct"
    if d.exists():
        actual = tifffile.imread(d / "actual.tif")
        data = tifffile.imread(d / "data.tif")
        kernel = tifffile.imread(d / "kernel.tif")
        for boundary in ("periodic", "zero"):
            t0 = time.perf_counter()
            sim = forward_model(
                actual,
                kernel,
                photons=23.73 * float(actual.max()),
                background=130.8,
                seed=0,
                boundary=boundary,
            )
            t = time.perf_counter() - t0
            rows.append(
                f"| flowdec bars 32×64×64 | {boundary} boundary, Poisson, background 130.8 | "
                f"{np.corrcoef(sim.ravel(), data.ravel())[0, 1]:.4f} | {t:.2f} |"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="best of N timings (default 2)")
    ap.add_argument("--save", action="store_true", help="also write benchmarks/_out/psf_models.md")
    args = ap.parse_args()
    sections = [
        (
            "PSF models, 64×128×128, NA 1.4, λ 0.52 µm, n 1.515, voxel 0.1 × 0.05 × 0.05 µm",
            table_models(args.repeat),
        ),
        (
            "Widefield FWHM (direct half-maximum width) relative to the textbook values",
            table_textbook(),
        ),
        (
            "Two implementations: our Born–Wolf integral vs psfmodels scalar Gibson–Lanni, "
            "64×128×128",
            table_agreement(args.repeat),
        ),
        ("Phantoms", table_phantoms(args.repeat)),
        ("Forward model vs published simulations", table_forward()),
    ]
    text = "\n".join(f"### {title}\n\n" + "\n".join(rows) + "\n" for title, rows in sections)
    print(text)
    if args.save:
        out = Path(__file__).resolve().parent / "_out"
        out.mkdir(exist_ok=True)
        (out / "psf_models.md").write_text(text)


if __name__ == "__main__":
    main()
