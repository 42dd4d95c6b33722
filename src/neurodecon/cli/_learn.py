"""``neurodecon train``: argument parsing for :func:`neurodecon.learn.train`.

The training options are generated from :meth:`neurodecon.learn.TrainConfig.options` (each
config field's flag, help, default and text form); the kernel sources are the shared PSF
source options (``--psf``, ``--beads``, ``--model`` ...), resolved by the learn API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import user_error
from ._common import add_psf_source_options, psf_sources

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the main parser."""
    from ..learn import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a deconvolution network for your microscope (from beads or a PSF)",
        description="Train the NeuroDecon residual 3D U-Net (or, with --arch, the Richardson-Lucy "
        "Network, 3D-RCAN or a 3D DeBCR). Kernel source: a bead stack "
        "(--beads, with --bead-diameter), a PSF file (--psf), or a theoretical PSF "
        "(--model and its options). Sharp training volumes: --sharp DIR and/or "
        "synthetic --phantoms. The training noise is calibrated on the bead stack and any "
        "--sample stacks (offset, gain, read noise, photon levels) unless given.",
    )
    add_psf_source_options(p)
    g = p.add_argument_group("training options (recorded in MODEL_DIR/config.json)")
    for opt in TrainConfig.options():
        o = opt.option
        if o.flag is None:
            continue
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": None, "help": opt.help_text()}
        if opt.choices is None:
            kwargs["metavar"] = opt.metavar
        if o.nargs is not None:
            kwargs["nargs"] = o.nargs
        if opt.choices is not None:
            kwargs["choices"] = opt.choices
        elif o.parse is not None:
            kwargs["type"] = _argparse_type(o.parse)
        g.add_argument(o.flag, **kwargs)
    p.add_argument(
        "--sharp",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="folder (or file) of sharp stacks to train on; repeatable",
    )
    p.add_argument(
        "--sample",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="a stack of the samples the model is for, from the same camera: its photon levels "
        "and background light set the training noise (with --calibrate auto); repeatable",
    )
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="model folder to write",
    )
    p.set_defaults(func=_train)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")  # argparse names it in errors
    return convert


def _given_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Return the training options on the command line, nested as ``TrainConfig.from_dict``'s."""
    from ..learn import TrainConfig

    nested: dict[str, dict[str, Any]] = {}
    for opt in TrainConfig.options():
        value = getattr(args, opt.dest, None)
        if value is not None:
            nested.setdefault(opt.path[0], {})[opt.path[1]] = value
    return nested


def _train(args: argparse.Namespace) -> int:
    from ..learn import TrainConfig, load_model, train
    from ..progress import console_progress

    given = _given_options(args)
    config = TrainConfig.from_dict(given)  # option errors first, before reading anything
    if "bead_target" in given.get("kernel", {}) and args.beads is None:
        raise user_error(
            "--bead-target applies to --beads only", fix="drop it, or train from --beads"
        )
    sources = psf_sources(args)
    sources["psf_model"], sources["psf_shape"] = sources.pop("model"), sources.pop("shape")
    sharp = [str(s) for s in args.sharp] if args.sharp else None
    samples = [str(s) for s in args.sample] if args.sample else None
    with console_progress("Training") as bar:
        out = train(
            config,
            output_dir=args.output,
            sharp=sharp,
            samples=samples,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=bar,
            **sources,
        )
    cfg = load_model(out).config
    best, base = cfg["validation"]["best"] or {}, cfg["validation"]["input_baseline"]
    nan = float("nan")
    print(
        f"wrote {out}: {cfg['steps_done']} steps in {cfg['training_time_s']:.0f} s; "
        f"validation PSNR {best.get('psnr', nan):.2f} dB, SSIM {best.get('ssim', nan):.3f} "
        f"(input {base.get('psnr', nan):.2f} dB, {base.get('ssim', nan):.3f})"
    )
    return 0
