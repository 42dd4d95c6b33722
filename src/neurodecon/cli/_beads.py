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
        help="experimental PSF from a bead z-stack (detect, align, average, remove the bead size)",
        description="Detect the beads of a z-stack, reject saturated, crowded, border and outlier "
        "beads (doublets, aggregates), align the rest with sub-voxel precision, average them, and "
        "write the PSF with the bead size removed. Optionally also the averaged bead o* and the "
        "ideal bead i* (NeuroDecon's training kernels) and a QC figure.",
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
        help="output shape; default ±2.5 FWHM per axis (z padded, never wrapped)",
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
        help="brightness-weighted mean (default) or per-voxel median of the aligned beads",
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
            progress=cb,
            threshold_sigma=args.threshold,
            saturation_level=args.saturation,
            average=args.average,
            channel=args.channel,
        )
    params = {
        "bead_diameter_um": args.bead_diameter,
        "size": args.size,
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
    print(
        f"beads used:        {result.n_used} of {result.info['n_detected']} detected "
        f"(rejected: {counts})"
    )
    print(f"voxel size (µm):   {tuple(round(v, 5) for v in result.voxel_size_um)}")
    print(f"kernel shape:      {tuple(result.psf.shape)}")
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
        for (z, y, x), reason in result.rejected:
            print(f"  rejected (z, y, x) = ({z:g}, {y:g}, {x:g}): {reason}, {REASONS[reason]}")
    elif result.rejected:
        print("  (pass -v or --json to list every rejected bead with its reason)")
    print("wrote:             " + ", ".join(outputs))
