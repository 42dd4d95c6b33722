"""The data-consistency check (``neurodecon.metrics.consistency``) on phantoms with a truth.

    .venv/bin/python benchmarks/bench_consistency.py [--figure docs/images/consistency.png]

For three phantom families imaged through a confocal PSF (NA 1.4, 0.1×0.05×0.05 µm; 300 photons at
the brightest voxel, background 5, camera offset 100, gain 2, read noise 1.5 e⁻; 40×128×128):

* the null: the true object itself — its χ² against 1 and the share of the volume flagged
  (false alarms);
* RL at 5, 20, 50, 200 iterations and RL-TV at 50 (true PSF, background known): χ², flagged share,
  PSNR/SSIM against the truth, and the Spearman rank correlation of ``|map|`` with the true
  absolute error of the re-blurred estimate (blurred again, what the data can see) per voxel;
* the truth with 5 invented beads (3 × the brightest voxel, one voxel each): how many of them the
  map flags at their position, and how much of the rest is flagged;
* the raw stack as the 'result' (no deconvolution): what a blurred estimate looks like.

``--figure`` writes a figure for docs/metrics.md: raw, the estimate with invented beads, and the
map (xy plane through a bead).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VOX = (0.1, 0.05, 0.05)
SHAPE = (40, 128, 128)
CAMERA = {"photons": 300.0, "background": 5.0, "read_noise": 1.5, "offset": 100.0, "gain": 2.0}
FAMILIES = ("tubes", "sponge", "puncta")


def _psf() -> np.ndarray:
    from neurodecon.psf import make_psf

    return make_psf(
        "confocal",
        shape=(21, 31, 31),
        voxel_size_um=VOX,
        na=1.4,
        wavelength_um=0.52,
        excitation_wavelength_um=0.488,
        immersion_index=1.515,
        pinhole_au=1.0,
    )


def _row(name, c, truth=None, est=None, psf=None, extra="") -> str:
    from scipy.stats import spearmanr

    from neurodecon.metrics import evaluate
    from neurodecon.synth import convolve

    rho = q = ""
    if truth is not None and est is not None:
        e = evaluate(est, truth, voxel_size_um=VOX)
        q = f"{e['psnr']:.2f} / {e['ssim']:.3f}"
        inner = tuple(slice(a, b) for a, b in c.interior)
        a = c.gain
        err = np.abs(a * convolve(est, psf) - a * convolve(truth, psf))[inner]
        step = max(1, err.size // 200_000)
        rho = f"{spearmanr(np.abs(c.map[inner]).ravel()[::step], err.ravel()[::step])[0]:.2f}"
    return (
        f"| {name} | {c.score:.3f} | {100 * c.flagged_fraction:.3f} | "
        f"{100 * c.invented_fraction:.3f} | {100 * c.missing_fraction:.3f} | {q} | {rho} |{extra}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    args = ap.parse_args()
    from neurodecon.classical import deconvolve
    from neurodecon.metrics import consistency
    from neurodecon.synth import forward_model, phantom

    psf = _psf()
    head = "| estimate | χ² | flagged % | invented % | missing % | PSNR / SSIM | ρ(|map|, error) |"
    for i, family in enumerate(FAMILIES):
        if family not in args.families:
            continue
        truth = phantom(family, shape=SHAPE, voxel_size_um=VOX, seed=10 + i).astype(np.float32)
        truth *= CAMERA["photons"] / float(truth.max())
        raw = forward_model(truth, psf, seed=20 + i, **CAMERA)
        print(f"\n#### {family}\n\n{head}\n|---|---|---|---|---|---|---|", flush=True)
        t0 = time.perf_counter()
        c = consistency(raw, truth, psf)
        dt = time.perf_counter() - t0
        print(_row("truth", c, extra=f" ({dt:.1f} s)"), flush=True)
        bg = CAMERA["offset"] + CAMERA["gain"] * CAMERA["background"]
        for method, it in (("rl", 5), ("rl", 20), ("rl", 50), ("rl", 200), ("rltv", 50)):
            est = np.asarray(
                deconvolve(raw, psf, method, iterations=it, background=bg, device="cpu")
            )
            print(_row(f"{method} {it}", consistency(raw, est, psf), truth, est, psf), flush=True)
        rng = np.random.default_rng(i)
        fake = truth.copy()
        spots = [tuple(int(rng.integers(m, n - m)) for n, m in zip(SHAPE, (8, 16, 16), strict=True))
                 for _ in range(5)]  # fmt: skip
        for p in spots:
            fake[p] += 3.0 * float(truth.max())
        cf = consistency(raw, fake, psf)
        hit = sum(cf.map[p] < -cf.threshold for p in spots)
        print(_row("truth + 5 invented beads", cf, extra=f" {hit}/5 beads flagged"), flush=True)
        print(_row("raw (no deconvolution)", consistency(raw, raw, psf)), flush=True)
        if args.figure is not None and family == args.families[0]:
            _figure(args.figure, raw, fake, cf, spots[0])


def _figure(path: Path, raw, fake, c, spot) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = spot[0]
    fig, ax = plt.subplots(1, 3, figsize=(12, 4.2))
    ax[0].imshow(raw[z], cmap="gray")
    ax[0].set_title("raw (plane through an invented bead)")
    ax[1].imshow(np.clip(fake[z], 0, np.percentile(fake, 99.9)), cmap="gray")
    ax[1].set_title("estimate: truth + 5 invented beads")
    lim = max(6.0, float(np.abs(c.map[z]).max()))
    im = ax[2].imshow(c.map[z], cmap="RdBu", vmin=-lim, vmax=lim)
    flagged = 100 * c.flagged_fraction
    ax[2].set_title(f"map (σ; red = invented): χ² {c.score:.2f}, {flagged:.2f} % flagged")
    for a in ax:
        a.plot(spot[2], spot[1], "o", mfc="none", mec="orange", ms=14)
        a.axis("off")
    fig.colorbar(im, ax=ax[2], fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
