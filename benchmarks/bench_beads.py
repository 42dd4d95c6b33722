"""Bead PSF extraction on the real bead stacks of ../shared/data: beads used, FWHM, time.

Usage::

    .venv/bin/python benchmarks/bench_beads.py [--data ../shared/data] [--out benchmarks/_out]
                                                [--skip-frt] [--simulated [--rl-iterations N]]
                                                [--skip-real]

Prints a Markdown table. For the PSF-Extractor (Hoogenboom) stack it also measures the FWHM of
that tool's own averaged PSF (``_output/psf_av.tif``, 5x upsampled, 21.6 x 21.6 x 60 nm voxels)
with the same function (``neurodecon.metrics.bead_fwhm``) and prints the ratio. With ``--out``
it writes a QC figure per stack there. ``--simulated`` adds the simulated stacks of
``tests/unit/test_beads.py`` (known PSF) at several photon levels: NCC and FWHM error of the PSF.
``--method`` (default ``average``, the method these tables were made for) chooses the extraction;
``benchmarks/bench_beads_joint.py`` judges the methods by the deconvolution they give.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import neurodecon as nd
from neurodecon.metrics import bead_fwhm
from neurodecon.psf import bead_qc_figure, extract_psf

REPO = Path(__file__).resolve().parents[1]
METHOD = ["average"]  # set from --method

# name, path under the data folder, voxel size override, bead diameter (µm), note
STACKS = [
    (
        "hoogenboom (widefield, NA 0.95)",
        "psf_extractor_hoogenboom/sample_zstack",
        (0.3, 0.108, 0.108),
        0.2,
        "200 nm beads (parameters.txt); z step not in the TIFFs",
    ),
    (
        "MPI-CBG confocal (4 beads)",
        "bioimage_analysis_notebooks/Bead_Image1_crop.tif",
        None,
        0.1,
        "bead size undocumented: 0.1 µm assumed",
    ),
    (
        "FRT Leica confocal, NA 1.4 (RGB)",
        "FRT_simple_psf_extractor/tiff_series_project",
        None,
        0.1,
        "bead size undocumented: 0.1 µm assumed",
    ),
]


def _fmt(values, spread=None) -> str:
    if spread is None:
        return " / ".join(f"{v:.3f}" for v in values)
    return " / ".join(f"{v:.3f}±{s:.3f}" for v, s in zip(values, spread, strict=True))


def simulated_table(rl_iterations: int) -> None:
    """NCC / FWHM error of the extracted PSF on the test suite's simulated bead stacks."""
    import importlib.util

    path = REPO / "tests" / "unit" / "test_beads.py"
    spec = importlib.util.spec_from_file_location("test_beads", path)
    tb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tb)
    print(
        "| simulated stack (28 single beads, 4 doublets, 4 beads 10x brighter; clipped at 4095) "
        "| peak photons | used | rejected | NCC(p, true) | FWHM error z/y/x (%) | NCC(o*, true) "
        "| p x-Nyquist power (true) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for seed, photons in ((0, 1500.0), (1, 200.0), (2, 60.0)):
        stack, _, sigma = tb.simulate_beads(seed, photons=photons)
        res = extract_psf(
            stack,
            voxel_size_um=tb.VOX,
            bead_diameter_um=0.2,
            bead_removal_iterations=rl_iterations,
            method=METHOD[0],
        )
        true = tb.gaussian_psf(res.psf.shape, tb.VOX, sigma)
        err = 100 * (np.asarray(res.psf_fwhm_um) / np.asarray(bead_fwhm(true, tb.VOX)) - 1)
        rej = ", ".join(f"{r}: {n}" for r, n in sorted(res.rejection_counts.items()))
        print(
            f"| Gaussian PSF 0.8/0.3/0.3 µm, seed {seed} | {photons:.0f} | {res.n_used} | {rej} | "
            f"{tb.ncc(res.psf, true):.4f} | {' / '.join(f'{e:+.1f}' for e in err)} | "
            f"{tb.ncc(res.blurred_bead, true):.4f} | "
            f"{tb._x_nyquist_fraction(res.psf):.1e} ({tb._x_nyquist_fraction(true):.1e}) |"
        )
    print()
    demo_like_table(tb)


def demo_like_table(tb) -> None:
    """Confocal beads like ``neurodecon demo``'s: x-Nyquist power of p with/without the filter."""
    from neurodecon.psf import make_psf
    from neurodecon.synth import forward_model, phantom

    vs = (0.1, 0.05, 0.05)
    psf = make_psf(
        "confocal",
        shape=(21, 31, 31),
        voxel_size_um=vs,
        na=1.4,
        wavelength_um=0.52,
        excitation_wavelength_um=0.488,
        immersion_index=1.515,
        pinhole_au=1.0,
    )
    true_fwhm = np.asarray(bead_fwhm(psf, vs, center=tuple(float(n // 2) for n in psf.shape)))
    print(
        "| demo-like confocal beads (NA 1.4, 0.1 µm beads, 0.1/0.05/0.05 µm voxels, "
        "1200 photons), seed | used | spectral filter | p x-Nyquist power (true PSF) "
        "| FWHM error z/y/x (%) |"
    )
    print("|---|---|---|---|---|")
    for seed in (2, 5, 8):
        truth = phantom(
            "beads",
            shape=(32, 160, 160),
            voxel_size_um=vs,
            seed=seed,
            feature_um=vs[2],
            beads_diameter_um=0.1,
            beads_spacing=2.4 / vs[2],
        )
        stack = forward_model(
            truth, psf, photons=1200.0, background=5.0, read_noise=1.0, seed=seed + 1
        )
        for on in (False, True):
            res = extract_psf(
                stack, voxel_size_um=vs, bead_diameter_um=0.1, spectral_filter=on, method=METHOD[0]
            )
            err = 100 * (np.asarray(res.psf_fwhm_um) / true_fwhm - 1)
            print(
                f"| {seed} | {res.n_used} | {'on' if on else 'off'} | "
                f"{tb._x_nyquist_fraction(res.psf):.1e} ({tb._x_nyquist_fraction(psf):.1e}) | "
                f"{' / '.join(f'{e:+.1f}' for e in err)} |"
            )
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="folder for QC figures")
    ap.add_argument("--skip-frt", action="store_true", help="skip the 71x1024x1024 Leica stack")
    ap.add_argument(
        "--simulated", action="store_true", help="also the simulated stacks (known PSF)"
    )
    ap.add_argument(
        "--rl-iterations",
        type=int,
        default=10,
        help="Richardson-Lucy iterations of the bead removal (simulated stacks; default 10)",
    )
    ap.add_argument("--skip-real", action="store_true", help="only the simulated stacks")
    ap.add_argument("--method", choices=("average", "joint"), default="average")
    args = ap.parse_args()
    METHOD[0] = args.method
    if args.simulated:
        print(f"Bead removal: {args.rl_iterations} Richardson-Lucy iterations")
        simulated_table(args.rl_iterations)
    if args.skip_real:
        return
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    print(
        "| stack | detected | used | rejected (reason: n) | FWHM o* z/y/x µm (± s.d. across beads) "
        "| FWHM PSF (bead removed) z/y/x µm | read s | extract s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratio_line = None
    for name, rel, vox, diameter, note in STACKS:
        if args.skip_frt and rel.startswith("FRT"):
            continue
        t0 = time.perf_counter()
        image = nd.read(args.data / rel, voxel_size_um=vox)
        t1 = time.perf_counter()
        res = extract_psf(image, bead_diameter_um=diameter, method=METHOD[0])
        t2 = time.perf_counter()
        rej = ", ".join(
            f"{r}: {n}" for r, n in sorted(res.rejection_counts.items(), key=lambda kv: -kv[1])
        )
        print(
            f"| {name} ({note}) | {res.info['n_detected']} | {res.n_used} | {rej} | "
            f"{_fmt(res.fwhm_um, res.fwhm_spread_um)} | {_fmt(res.psf_fwhm_um)} | "
            f"{t1 - t0:.1f} | {t2 - t1:.1f} |"
        )
        if args.out:
            stem = rel.split("/")[0]
            bead_qc_figure(res, image, args.out / f"beads_qc_{stem}.png")
        if rel.startswith("psf_extractor"):
            import tifffile

            ref = tifffile.imread(args.data / rel / "_output" / "psf_av.tif").astype(np.float32)
            ref_fwhm = np.asarray(bead_fwhm(ref, (0.06, 0.0216, 0.0216)))
            ratio = np.asarray(res.fwhm_um) / ref_fwhm
            ratio_line = (
                f"PSF-Extractor psf_av.tif FWHM z/y/x = {_fmt(ref_fwhm)} µm; "
                f"ours (o*) / theirs = {_fmt(ratio)}"
            )
    if ratio_line:
        print()
        print(ratio_line)


if __name__ == "__main__":
    main()
