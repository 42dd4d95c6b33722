"""``neurodecon evaluate``: every quality and resolution metric of a result, as a table or JSON."""

from __future__ import annotations

import argparse
import math

from ._common import add_voxel_size, print_json


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the main parser."""
    p = sub.add_parser(
        "evaluate",
        help="quality and resolution metrics of a result (with or without ground truth)",
        description="Scores PRED: PSNR, SSIM, NRMSE, RMSE, Pearson and FSC resolution against "
        "--truth when given; decorrelation resolution and SNR per plane (XY, XZ, YZ), "
        "Shannon entropy and GLCM texture always.",
    )
    p.add_argument("pred", metavar="PRED", help="image to score (3D stack)")
    p.add_argument("--truth", metavar="GT", help="ground-truth stack of the same shape")
    p.add_argument(
        "--normalization",
        choices=("affine", "percentile", "none"),
        default="affine",
        help="intensity matching before PSNR/SSIM/NRMSE/Pearson: affine = least-squares "
        "gain+offset of PRED to the percentile-normalised GT (default); percentile = "
        "each to its 1st–99.8th percentiles; none",
    )
    p.add_argument(
        "--raw",
        metavar="RAW",
        help="the raw stack PRED was deconvolved from: report whether PRED, blurred again by "
        "--psf, reproduces it within its noise (χ² and the share of the volume flagged; no "
        "ground truth needed)",
    )
    p.add_argument("--psf", metavar="PSF", help="the PSF for --raw (a model's: its kernel file)")
    p.add_argument(
        "--map-out", metavar="FILE", help="with --raw: write the consistency map (float32)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --map-out")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_voxel_size(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from ..errors import user_error
    from ..io import read
    from ..metrics import evaluate

    pred = read(args.pred, voxel_size_um=args.voxel_size)
    truth = read(args.truth, voxel_size_um=args.voxel_size) if args.truth else None
    voxel = tuple(args.voxel_size) if args.voxel_size else pred.voxel_size_um
    for path, img in ((args.pred, pred), (args.truth, truth)):
        if img is not None and img.data.ndim != 3:
            raise user_error(
                f"evaluate needs one 3D (Z, Y, X) stack, got axes {img.axes} {img.shape}",
                path=path,
                fix="save one channel and time point as its own stack",
            )
        if img is not None and sum(n > 1 for n in img.shape) < 2:  # a line or a single voxel
            raise user_error(
                f"evaluate needs at least 2 voxels along two axes, got shape {img.shape}",
                path=path,
                fix="give the whole stack, not a line or a single voxel",
            )
    if truth is not None and truth.shape != pred.shape:
        raise user_error(
            f"shape {truth.shape} differs from the prediction's {pred.shape}",
            path=args.truth,
            fix="give the ground truth of the same stack",
        )
    check = _consistency(args, pred, voxel)
    metrics = evaluate(
        pred.data,
        truth.data if truth is not None else None,
        voxel_size_um=voxel,
        normalization=args.normalization,
    )
    if args.json:
        print_json(
            {
                "pred": str(args.pred),
                "truth": args.truth,
                "voxel_size_um": list(voxel),
                "normalization": args.normalization,
                "metrics": {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
                **({"consistency": check.to_dict()} if check is not None else {}),
            }
        )
    else:
        _table(args, voxel, metrics)
        if check is not None:
            from ._check import summary

            print(summary(check))
    return 0


def _consistency(args: argparse.Namespace, pred, voxel):
    """``--raw``/``--psf``: the consistency of PRED with its raw data (None without ``--raw``)."""
    from ..errors import user_error
    from ..io import check_output_path, read, write
    from ..metrics import consistency
    from ..psf import resolve_psf

    if args.raw is None and args.psf is None and args.map_out is None:
        return None
    if args.raw is None or args.psf is None:
        raise user_error(
            "the consistency check needs both --raw and --psf",
            fix="give the raw stack PRED came from and the PSF it was deconvolved with",
        )
    if args.map_out is not None:
        check_output_path(args.map_out, [args.pred, args.raw, args.psf], args.overwrite)
    raw = read(args.raw, voxel_size_um=args.voxel_size)
    if raw.shape != pred.shape:
        raise user_error(
            f"shape {raw.shape} differs from the prediction's {pred.shape}",
            path=args.raw,
            fix="give the raw stack PRED was deconvolved from",
        )
    psf = resolve_psf(image_shape=pred.shape, image_voxel_size_um=voxel, psf=args.psf).psf
    result = consistency(raw.data, pred.data, psf)
    if args.map_out is not None:
        write(
            args.map_out,
            pred.with_data(result.map),
            overwrite=args.overwrite,
            inputs=(str(args.pred), str(args.raw), str(args.psf)),
            provenance={"parameters": {"consistency": result.to_dict()}},
        )
    return result


def _table(args: argparse.Namespace, voxel: tuple[float, ...], metrics: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..metrics import METRIC_KEYS

    title = f"{args.pred}" + (f" vs {args.truth} ({args.normalization})" if args.truth else "")
    table = Table(title=title, caption=f"voxel (z, y, x) = {tuple(round(v, 4) for v in voxel)} µm")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, value in metrics.items():
        shown = "n/a" if math.isnan(value) else f"{value:.4g}"
        table.add_row(key, shown, METRIC_KEYS.get(key, ""))
    Console(width=120).print(table)
