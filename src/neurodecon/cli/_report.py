"""``neurodecon compare`` and ``neurodecon demo``: several methods side by side, one report."""

from __future__ import annotations

import argparse
import re
import sys
import time

from ._common import add_device, add_psf_source_options, add_voxel_size, psf_sources

_INNER = re.compile(r": \d+/\d+")


class StepPrinter:
    """Progress callback printing one line per step (not per iteration) to stderr."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.last: tuple[int, str] | None = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        from ..progress import console_quiet

        if _INNER.search(message) or console_quiet():
            return
        key = (done, message)
        if key != self.last:
            self.last = key
            print(
                f"[{time.perf_counter() - self.t0:7.1f} s] {done}/{total} {message}",
                file=self.stream,
                flush=True,
            )


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` and ``demo``."""
    p = sub.add_parser(
        "compare",
        help="run several deconvolution methods and write a visual report",
        description="Deconvolve INPUT with several methods (classical and learned) and write an "
        "HTML report with orthogonal views, line profiles, Fourier spectra, FWHM, "
        "metrics and a ranking, plus metrics.json/csv and each result as a TIFF.",
    )
    p.add_argument("input", help="the blurred 3D stack")
    add_psf_source_options(p)
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated: classical names (rl, rltv, wiener, ...), model:DIR, "
        "model:default (default: wiener,rl,rltv and the shipped model if installed)",
    )
    p.add_argument(
        "--truth", help="ground-truth stack (adds PSNR/SSIM/NRMSE/Pearson, ranks by them)"
    )
    add_voxel_size(p)
    p.add_argument(
        "--iterations",
        default="auto",
        help="iterations of the iterative methods: N or auto (default auto)",
    )
    p.add_argument(
        "--regularization",
        type=float,
        default=None,
        help="regularisation of the methods that take one (default: each method's)",
    )
    p.add_argument(
        "--background", default="auto", help="background: a number or auto (default auto)"
    )
    add_device(p)
    p.add_argument("-o", "--output", required=True, help="report folder")
    p.add_argument("--overwrite", action="store_true", help="write into an existing report folder")
    p.set_defaults(func=_compare)

    d = sub.add_parser(
        "demo",
        help="simulate a stack and beads, compare methods, write a report (a few minutes)",
        description="Simulate a confocal stack, a bead image and the ground truth from a "
        "documented microscope, extract the PSF from the beads, run classical methods and the "
        "shipped NeuroDecon model, and write the comparison report.",
    )
    d.add_argument(
        "-o", "--output", default="demo_output", help="report folder (default demo_output)"
    )
    d.add_argument("--overwrite", action="store_true", help="write into an existing folder")
    d.add_argument(
        "--quick", action="store_true", help="small volumes and few iterations (seconds)"
    )
    add_device(d)
    d.set_defaults(func=_demo)


def _number_or_auto(text: str, what: str, cast=float):
    from ..errors import user_error

    if str(text).lower() == "auto":
        return "auto"
    try:
        return cast(text)
    except ValueError:
        raise user_error(f"invalid {what} {text!r}", fix="give a number or auto") from None


def _compare(args: argparse.Namespace) -> int:
    from ..io import check_image, read
    from ..report import compare

    image = read(args.input, voxel_size_um=args.voxel_size)
    check_image(image, args.input)  # a constant image is readable, but not deconvolvable
    src = psf_sources(args)
    summary = compare(
        image,
        psf=src["psf"],
        psf_voxel_size_um=src["psf_voxel_size_um"],
        psf_background=src["psf_background"],
        beads=src["beads"],
        bead_diameter_um=src["bead_diameter_um"],
        beads_voxel_size_um=src["beads_voxel_size_um"],
        psf_model=src["model"],
        optics=src["optics"],
        psf_shape=src["shape"],
        methods=args.methods,
        truth=args.truth,
        voxel_size_um=args.voxel_size,
        output_dir=args.output,
        overwrite=args.overwrite,
        iterations=_number_or_auto(args.iterations, "iteration count", int),
        regularization=args.regularization,
        background=_number_or_auto(args.background, "background"),
        device=args.device,
        title=f"NeuroDecon comparison: {args.input}",
        progress=StepPrinter(),
    )
    _print_summary(summary)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..report import demo

    print(
        f"NeuroDecon demo{' (quick)' if args.quick else ''}: simulating data, then comparing "
        f"methods; report in {args.output}/",
        file=sys.stderr,
        flush=True,
    )
    summary = demo(
        args.output,
        overwrite=args.overwrite,
        quick=args.quick,
        device=args.device,
        progress=StepPrinter(),
    )
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    order = summary["ranking"]["order"]
    print(f"Ranking ({summary['ranking']['criterion']}):")
    for name in order + [n for n in summary["methods"] if n not in order]:
        r = summary["methods"][name]
        t = f"{r['time_s']:.1f} s" if r["time_s"] is not None else ""
        status = f"FAILED: {r['error']}" if r["status"] == "failed" else ""
        rank = f"{r['rank']}." if r["rank"] else "-"
        print(f"  {rank:>3} {name:<14} {t:>9}  {status}".rstrip())
    print(f"report: {summary['report']}")
