"""``neurodecon psf extract``: PSF, averaged bead o* and ideal bead i* from a bead z-stack."""

from __future__ import annotations

import argparse

from ..psf import BEAD_REJECTION_REASONS as REASONS
from ._common import add_output_options, add_voxel_size, print_json

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``psf extract`` to ``neurodecon psf``."""
    p = psf_sub.add_parser(
        "extract",
        help="experimental PSF from a bead z-stack (all beads fitted jointly, or averaged)",
        description="Detect and localise the beads of a z-stack and estimate the PSF with the bead "
        "size removed. Default (--method joint): every bead and every plane in one model of the "
        "stack, so crowded beads help and the PSF keeps its whole extent (widefield tails); the "
        "box is sized from the flux per plane against the noise, and with the optics (--na ...) "
        "the tails can be extended by a fitted model for a deeper image (--image-shape). "
        "--method average crops isolated beads and averages them (compact PSFs only). "
        "Optionally also o* and i* (NeuroDecon's training kernels) and a QC figure.",
    )
    p.add_argument(
        "beads",
        metavar="BEADS",
        help="bead stack: TIFF/OME-TIFF/OME-Zarr/.npy, or a folder of single-plane TIFFs",
    )
    p.add_argument(
        "-o", "--output", required=True, help="output PSF file (.tif, .ome.tif, .npy, ...)"
    )
    p.add_argument(
        "--bead-diameter",
        type=float,
        required=True,
        metavar="UM",
        help="bead diameter in µm (required; e.g. 0.1 for 100 nm beads)",
    )
    add_voxel_size(p)
    p.add_argument(
        "--size",
        nargs=3,
        type=int,
        metavar=("Z", "Y", "X"),
        default=None,
        help="output shape; default: joint — the planes whose flux stands above the noise and "
        "the light there; average — ±2.5 FWHM per axis (never wrapped)",
    )
    p.add_argument(
        "--method",
        choices=("joint", "average"),
        default="joint",
        help="joint model of the whole stack (default) or per-bead crop-and-average",
    )
    p.add_argument(
        "--image-shape",
        nargs=3,
        type=int,
        metavar=("Z", "Y", "X"),
        default=None,
        help="shape of the image the PSF is for (joint): bounds the box; with --na, planes it "
        "needs beyond the bead stack come from a fitted model (hybrid PSF)",
    )
    optics = p.add_argument_group(
        "optics (optional, joint method): the light cone, and the model for hybrid tails"
    )
    optics.add_argument("--na", type=float, default=None, help="numerical aperture")
    optics.add_argument(
        "--immersion-index", type=float, default=None, help="immersion refractive index"
    )
    optics.add_argument(
        "--wavelength", type=float, default=None, metavar="UM", help="emission wavelength, µm"
    )
    optics.add_argument(
        "--tail-model",
        default="widefield",
        choices=("widefield", "gibson-lanni", "confocal", "two-photon"),
        help="PSF model of the hybrid tails (default widefield)",
    )
    p.add_argument(
        "--channel",
        type=int,
        default=None,
        help="channel of a multi-channel stack (default: the one with the most signal)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=8.0,
        metavar="K",
        help="detection threshold in noise standard deviations of the smoothed stack (default 8)",
    )
    p.add_argument(
        "--saturation",
        type=float,
        default=None,
        metavar="VALUE",
        help="raw value counting as saturated (default: dtype maximum or a clipped top)",
    )
    p.add_argument(
        "--average",
        choices=("mean", "median"),
        default="mean",
        help="--method average: brightness-weighted mean (default) or per-voxel median",
    )
    p.add_argument(
        "--blurred-bead-out",
        metavar="FILE",
        default=None,
        help="also write the averaged bead o* (NeuroDecon's blurred bead)",
    )
    p.add_argument(
        "--ideal-bead-out",
        metavar="FILE",
        default=None,
        help="also write the ideal bead i* (anti-aliased sphere)",
    )
    p.add_argument(
        "--report",
        metavar="PNG",
        default=None,
        help="write a QC figure (orthogonal views, profiles, map of used/rejected beads)",
    )
    p.add_argument(
        "--log-scale", action="store_true", help="QC figure on a logarithmic colour scale"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_output_options(p)
    p.set_defaults(func=_extract)


def _extract(args: argparse.Namespace) -> int:
    from ..io import Image, read
    from ..progress import console_progress
    from ..psf import bead_qc_figure, extract_psf
    from ._common import write_output

    outputs = [
        o for o in (args.output, args.blurred_bead_out, args.ideal_bead_out, args.report) if o
    ]
    _check_outputs_first(args, outputs)
    image = read(args.beads, voxel_size_um=args.voxel_size)
    with console_progress("Extracting PSF") as cb:
        result = extract_psf(
            image,
            bead_diameter_um=args.bead_diameter,
            size=tuple(args.size) if args.size else None,
            method=args.method,
            optics=_optics(args),
            image_shape=tuple(args.image_shape) if args.image_shape else None,
            progress=cb,
            threshold_sigma=args.threshold,
            saturation_level=args.saturation,
            average=args.average,
            channel=args.channel,
        )
    params = {
        "bead_diameter_um": args.bead_diameter,
        "method": result.method,
        "size": args.size,
        "optics": _optics(args),
        "hybrid": result.info.get("hybrid"),
        "n_used": result.n_used,
        "rejected_by_reason": result.rejection_counts,
        "fwhm_um": list(result.fwhm_um),
        "bead_removal": result.info["bead_removal"],
    }
    for path, data, kind in (
        (args.output, result.psf, "psf"),
        (args.blurred_bead_out, result.blurred_bead, "blurred_bead"),
        (args.ideal_bead_out, result.ideal_bead, "ideal_bead"),
    ):
        if path:
            write_output(
                args,
                path,
                Image(data=data, voxel_size_um=result.voxel_size_um, axes="ZYX"),
                inputs=(args.beads,),
                parameters={"kind": kind, **params},
            )
    if args.report:
        bead_qc_figure(result, image, args.report, log_scale=args.log_scale)
    summary = {"input": args.beads, "outputs": outputs, **result.summary()}
    if args.json:
        print_json(summary)
    else:
        _print_summary(result, outputs, list_rejected=args.verbose or len(result.rejected) <= 12)
    return 0


def _optics(args: argparse.Namespace) -> dict | None:
    """Return the optics given on the command line (None when no NA)."""
    if args.na is None:
        return None
    out = {"na": args.na, "model": args.tail_model}
    if args.immersion_index is not None:
        out["immersion_index"] = args.immersion_index
    if args.wavelength is not None:
        out["wavelength_um"] = args.wavelength
    return out


def _check_outputs_first(args: argparse.Namespace, outputs: list[str]) -> None:
    """Refuse existing outputs before the (long) extraction, not after it."""
    from pathlib import Path

    from ..errors import user_error

    for o in outputs:
        if Path(o).resolve() == Path(args.beads).resolve():
            raise user_error(
                "refusing to overwrite an input file", path=o, fix="choose a different output name"
            )
        if Path(o).exists() and not args.overwrite:
            raise user_error(
                "output already exists", path=o, fix="choose another name or pass --overwrite"
            )
    if len({str(Path(o).resolve()) for o in outputs}) != len(outputs):
        raise user_error("two outputs have the same name", fix="give each output its own file name")


def _print_summary(result, outputs: list[str], *, list_rejected: bool) -> None:
    counts = (
        ", ".join(
            f"{n} {r}" for r, n in sorted(result.rejection_counts.items(), key=lambda kv: -kv[1])
        )
        or "none"
    )
    f, s, p = result.fwhm_um, result.fwhm_spread_um, result.psf_fwhm_um
    left = "left out of the fit" if result.method == "joint" else "rejected"
    print(
        f"beads used:        {result.n_used} of {result.info['n_detected']} detected "
        f"({left}: {counts}; method {result.method})"
    )
    print(f"voxel size (µm):   {tuple(round(v, 5) for v in result.voxel_size_um)}")
    print(f"kernel shape:      {tuple(result.psf.shape)}")
    if result.method == "joint":
        _print_joint(result)
    print(
        "FWHM o* (µm):      "
        + "   ".join(f"{ax} {a:.3f} ± {b:.3f}" for ax, a, b in zip("zyx", f, s, strict=True))
    )
    print(
        "FWHM PSF (µm):     "
        + "   ".join(f"{ax} {a:.3f}" for ax, a in zip("zyx", p, strict=True))
        + f"   (bead removed: {result.info['bead_removal']})"
    )
    if list_rejected:
        word = "left out" if result.method == "joint" else "rejected"
        for (z, y, x), reason in result.rejected:
            print(f"  {word} (z, y, x) = ({z:g}, {y:g}, {x:g}): {reason}, {REASONS[reason]}")
    elif result.rejected:
        print("  (pass -v or --json to list every rejected bead with its reason)")
    print("wrote:             " + ", ".join(outputs))


def _print_joint(result) -> None:
    joint = result.info.get("joint", {})
    print(
        f"background:        {result.info['background']:.4g} (fitted; "
        f"light cone tan θ {joint.get('cone_tan_theta', float('nan')):.3g}"
        f"{' from the optics' if joint.get('cone_from_optics') else ', NA/n ≤ 0.95'})"
    )
    decay = flux_decay(result.flux_per_plane, result.voxel_size_um[0])
    if decay:
        print(
            "flux per plane:    "
            + "   ".join(f"±{dz:g} µm {v:.3g}" for dz, v in decay.items())
            + "   (relative to the focal plane)"
        )
    hyb = result.info.get("hybrid")
    if hyb:
        print(
            f"hybrid PSF:        measured within ±{hyb['measured_half_um']:g} µm, "
            f"{hyb['model']} model beyond (scaled ×{hyb['scale']:.3g})"
        )


def flux_decay(flux, dz_um: float, steps=(0.5, 1.0, 2.0, 4.0)) -> dict[float, float]:
    """Mean flux of the planes at ±dz relative to the focal plane's, for the dz inside the box."""
    if flux is None:
        return {}
    f = [float(v) for v in flux]
    c = len(f) // 2
    out = {}
    for dz in steps:
        k = int(round(dz / dz_um))
        if 0 < k <= c and f[c] > 0:
            out[dz] = 0.5 * (f[c - k] + f[c + k]) / f[c]
    return out
