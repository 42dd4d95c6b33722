"""Noise calibration on simulated cameras: true vs estimated offset, gain, read noise, photons.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_calibration.py [--quick]

The microscope of the issue (confocal, NA 1.4 oil, 0.35 waves of spherical aberration, emission
0.52 µm, excitation 0.488 µm, voxels 0.15 × 0.05 × 0.05 µm), stacks of 40 × 160 × 160 voxels,
camera offset 100 counts, gains 0.5 / 1 / 2 counts per e⁻, read noise 1 / 2 / 5 e⁻, and three
kinds of stack:

``beads``
    0.1 µm beads (about 30), scaled so that a bead's image peaks at P photons.
``sample``
    dendrites with spines and protein clusters, P photons at the brightest truth voxel (dark
    space between the structures).
``hazy``
    dendrites, protein clusters and an ER network: out-of-focus light in every voxel.

"photons" is the brightest structures' level (99.9th percentile of the noise-free image) and,
for beads, the median bead peak; the estimate is ``calibrate_noise``'s ``photons`` /
``median_peak_photons``; the gain's standard error ``gain_se`` is printed with it (a ``notes``
entry flags it above 10 %). Prints a Markdown table and the largest errors per kind; each row
draws its own noise (seed = row number).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy import ndimage as ndi

from neurodecon.metrics import calibrate_noise
from neurodecon.psf import make_psf
from neurodecon.synth import forward_model, phantom

VOX = (0.15, 0.05, 0.05)
SHAPE = (40, 160, 160)
OFFSET = 100.0
KINDS = {
    "beads": dict(names="beads", beads_diameter_um=0.1, beads_spacing=60),
    "sample": dict(names="dendrites,clusters"),
    "hazy": dict(names="dendrites,clusters,er"),
}


def _psf() -> np.ndarray:
    return make_psf(
        "confocal",
        shape=(21, 41, 41),
        voxel_size_um=VOX,
        na=1.4,
        wavelength_um=0.52,
        excitation_wavelength_um=0.488,
        spherical_waves=0.35,
    )


def _truth(kind: str) -> np.ndarray:
    opts = dict(KINDS[kind])
    names = opts.pop("names")
    return phantom(names, shape=SHAPE, voxel_size_um=VOX, seed=3, **opts)


def _true_levels(expected: np.ndarray, beads: bool) -> tuple[float, float]:
    level = float(np.percentile(expected, 99.9))
    if not beads:
        return level, float("nan")
    is_max = expected == ndi.maximum_filter(expected, size=7, mode="nearest")
    return level, float(np.median(expected[is_max & (expected > 0.2 * expected.max())]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="gains 0.5, 2 and read noise 2 only")
    args = ap.parse_args()
    psf = _psf()
    gains = (0.5, 2.0) if args.quick else (0.5, 1.0, 2.0)
    noises = (2.0,) if args.quick else (1.0, 2.0, 5.0)
    print(
        "| stack | P | gain | σ e⁻ | offset | gain est ± se (err) | σ est e⁻ (err) | photons "
        "true → est (err) | bead peak true → est (err) | s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        truth = _truth(kind)
        unit = forward_model(truth, psf, photons=None) / np.float32(truth.max())
        rows = itertools.product((60.0, 200.0, 1000.0), gains, noises)
        for row, (p_level, gain, sigma) in enumerate(rows):
            # beads: P is the bead's image peak; samples: P photons at the brightest truth voxel
            photons = p_level / float(unit.max()) if kind == "beads" else p_level
            img = forward_model(
                truth, psf, photons=photons, read_noise=sigma, offset=OFFSET, gain=gain, seed=row
            )
            level, peak = _true_levels(unit * np.float32(photons), kind == "beads")
            t0 = time.perf_counter()
            cal = calibrate_noise(img)
            dt = time.perf_counter() - t0
            err = {
                "offset (counts)": cal.offset - OFFSET,
                "gain": cal.gain / gain - 1,
                "read noise": cal.read_noise_e / sigma - 1,
                "photons": cal.photons / level - 1,
            }
            bead_col = "–"
            if kind == "beads":
                err["bead peak"] = cal.median_peak_photons / peak - 1
                bead_col = f"{peak:.0f} → {cal.median_peak_photons:.0f} ({err['bead peak']:+.1%})"
            w = worst.setdefault(kind, {})
            for k, v in err.items():
                w[k] = max(w.get(k, 0.0), abs(v)) if np.isfinite(v) else float("inf")
            print(
                f"| {kind} | {p_level:g} | {gain:g} | {sigma:g} | {cal.offset:.2f} | "
                f"{cal.gain:.3f} ± {cal.gain_se:.3f} ({err['gain']:+.1%}) | {cal.read_noise_e:.2f} "
                f"({err['read noise']:+.1%}) | {level:.0f} → {cal.photons:.0f} "
                f"({err['photons']:+.1%}) | {bead_col} | {dt:.2f} |",
                flush=True,
            )
    print()
    for kind, w in worst.items():
        parts = [f"{k} {v:.2f}" if k.startswith("offset") else f"{k} {v:.1%}" for k, v in w.items()]
        print(f"- {kind}: largest errors: " + ", ".join(parts))


if __name__ == "__main__":
    main()
