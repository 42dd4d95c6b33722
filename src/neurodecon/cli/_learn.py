"""``neurodecon train``: train the NeuroDecon network from beads or a PSF."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from ..errors import user_error
from ._common import add_device, add_psf_model_options, add_voxel_size, has_psf_model, psf_sources

log = logging.getLogger("neurodecon")



def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the main parser."""
    p = sub.add_parser(
        "train",
        help="train a deconvolution network for your microscope (from beads or a PSF)",
        description="Train the NeuroDecon residual 3D U-Net. Kernel source: a bead stack "
        "(--beads, with --bead-diameter), a PSF file (--psf), or a theoretical PSF "
        "(--model and its options). Sharp training volumes: --sharp DIR and/or "
        "synthetic --phantoms.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--beads", type=Path, help="bead stack (bead mode: X = i ⊛ o*, Y = i ⊛ i*)")
    src.add_argument("--psf", type=Path, help="PSF stack (PSF mode: X = i ⊛ PSF, Y = i)")
    p.add_argument(
        "--bead-diameter",
        type=float,
        default=None,
        metavar="UM",
        help="bead diameter in µm (required with --beads)",
    )
    p.add_argument(
        "--bead-target",
        choices=("bead", "psf"),
        default=None,
        help="with --beads: 'bead' trains towards i ⊛ i* (the paper's bead mode, the "
        "ideal bead's resolution; default); 'psf' uses the PSF extracted from the "
        "beads (bead size deconvolved out) and trains towards the object itself",
    )
    add_psf_model_options(p)
    p.add_argument(
        "--sharp",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="folder (or file) of sharp stacks to train on; repeatable",
    )
    p.add_argument(
        "--phantoms",
        default=None,
        metavar="NAME,...",
        help="synthetic phantom families (default ellipsoids,tubes; 'none' for no phantoms)",
    )
    p.add_argument(
        "--magnification",
        nargs=2,
        type=float,
        default=None,
        metavar=("LO", "HI"),
        help="phantom feature size × a factor drawn log-uniformly from [LO, HI] per "
        "volume (magnification augmentation; default 1 1)",
    )
    p.add_argument(
        "--n-phantoms", type=int, default=None, help="number of phantom volumes (default 10)"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default 1000)")
    p.add_argument(
        "--patch",
        nargs=3,
        type=int,
        metavar=("Z", "Y", "X"),
        default=None,
        help="training crop in voxels (default 32 64 64)",
    )
    p.add_argument(
        "--pool-shape",
        nargs=3,
        type=int,
        metavar=("Z", "Y", "X"),
        default=None,
        help="size of each sharp pool volume in voxels (default 48 160 160)",
    )
    p.add_argument("--batch", type=int, default=None, help="crops per step (default 2)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 5e-4)")
    p.add_argument("--base-channels", type=int, default=None, help="network width (default 16)")
    p.add_argument(
        "--net-depth",
        type=int,
        default=None,
        dest="net_depth",
        help="network depth: number of poolings (default 3)",
    )
    p.add_argument(
        "--physics-input",
        choices=("none", "rl"),
        default=None,
        dest="physics",
        help="physics-aware variant: feed RL_K(raw) as a second input channel and learn a "
        "residual on top of it (default none)",
    )
    p.add_argument(
        "--physics-iterations",
        type=int,
        default=None,
        metavar="K",
        help="RL iterations of the physics input (default 10)",
    )
    p.add_argument(
        "--physics-method",
        choices=("rl", "rl-accel"),
        default=None,
        help="RL flavour of the physics input (default rl)",
    )
    p.add_argument(
        "--physics-background",
        type=_background,
        default=None,
        metavar="B|auto",
        help="background (counts) the physics input's RL assumes, or auto: estimated "
        "from each volume (default auto)",
    )
    p.add_argument(
        "--photons",
        type=_numbers,
        default=None,
        metavar="P,...",
        help="training noise: expected photon counts at the sharp volume's robust "
        "maximum, one drawn per crop (default 30,100,300,1000)",
    )
    p.add_argument(
        "--backgrounds",
        type=_numbers,
        default=None,
        metavar="B,...",
        help="training noise: background counts per voxel left in the input, one drawn "
        "per crop; match your microscope's (default 0,2,5,10)",
    )
    p.add_argument(
        "--loss",
        choices=("mae", "mse"),
        default=None,
        help="data term of the loss (default mae, the paper's)",
    )
    p.add_argument(
        "--ssim-weight",
        type=float,
        default=None,
        metavar="W",
        help="add W · (1 − SSIM) to the loss (default 0)",
    )
    p.add_argument(
        "--hessian-alpha",
        type=float,
        default=None,
        metavar="A",
        help="weight of the Hessian (smoothness) term of the loss (default 0.005)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MIN",
        dest="time_limit_min",
        help="wall-clock budget in minutes for the whole run (data pool included): the "
        "learning-rate schedule is fitted to it and training stops when it is spent",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--val-every", type=int, default=None, help="steps between validations")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    add_voxel_size(p)
    add_device(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="model folder to write",
    )
    p.set_defaults(func=_train)


def _background(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number") from None


def _numbers(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None
    if not vals or any(not math.isfinite(v) or v < 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers >= 0, e.g. 0,5,10")
    return vals


def _overrides(args: argparse.Namespace) -> dict:
    names = {
        "steps": "steps",
        "batch": "batch",
        "lr": "lr",
        "seed": "seed",
        "threads": "threads",
        "n_phantoms": "n_phantoms",
        "checkpoint_every": "checkpoint_every",
        "val_every": "val_every",
        "physics": "physics",
        "physics_iterations": "physics_iterations",
        "physics_method": "physics_method",
        "physics_background": "physics_background",
        "photons": "photons",
        "backgrounds": "backgrounds",
        "loss": "loss",
        "time_limit_min": "time_limit_min",
        "hessian_alpha": "hessian_alpha",
        "ssim_weight": "ssim_weight",
        "bead_target": "bead_target",
    }
    cfg = {k: getattr(args, a) for a, k in names.items() if getattr(args, a) is not None}
    if args.patch:
        cfg["patch"] = tuple(args.patch)
    if args.pool_shape:
        cfg["pool_shape"] = tuple(args.pool_shape)
    if args.magnification:
        cfg["magnification"] = tuple(args.magnification)
    if args.phantoms is not None:
        fams = (
            []
            if args.phantoms.strip().lower() == "none"
            else [f.strip() for f in args.phantoms.split(",") if f.strip()]
        )
        cfg["phantoms"] = tuple(fams)
    net = {}
    if args.base_channels is not None:
        net["base_channels"] = args.base_channels
    if args.net_depth is not None:
        net["depth"] = args.net_depth
    if net:
        cfg["net"] = net
    cfg["device"] = args.device
    return cfg


def _kernel_source(args: argparse.Namespace, cfg: dict) -> dict:
    from ..io import read

    if args.bead_target is not None and args.beads is None:
        raise user_error(
            "--bead-target applies to --beads only", fix="drop it, or train from --beads"
        )
    if args.beads is not None:
        if args.bead_diameter is None:
            raise user_error("--beads needs the bead diameter", fix="add --bead-diameter UM")
        img = read(args.beads, voxel_size_um=args.voxel_size)
        cfg["voxel_size_um"] = tuple(img.voxel_size_um)
        return {
            "beads": img.data,
            "bead_diameter_um": args.bead_diameter,
            "kernel_info": {"source": str(args.beads)},
        }
    if args.psf is not None or has_psf_model(args):
        from ..learn import TrainConfig
        from ..psf import resolve_psf

        sources = psf_sources(args)
        vs = args.voxel_size
        if vs is None and args.psf is not None:
            vs = read(args.psf, check=False).voxel_size_um
        if vs is None:
            raise user_error(
                "training from a PSF model needs the voxel size of the data it is meant for",
                fix="add --voxel-size Z Y X (µm)",
            )
        pool_shape = cfg.get("pool_shape", TrainConfig().pool_shape)
        resolved = resolve_psf(
            image_shape=pool_shape, image_voxel_size_um=vs, **{**sources, "beads": None}
        )
        cfg["voxel_size_um"] = tuple(float(v) for v in vs)
        info = {"source": resolved.description}
        if resolved.source == "model":
            info["psf_params"] = {**resolved.record, "voxel_size_um": list(cfg["voxel_size_um"])}
        return {"psf": resolved.psf, "kernel_info": info}
    raise user_error(
        "no kernel source given",
        fix="pass --beads FILE --bead-diameter UM, --psf FILE, or --model MODEL",
    )


def _train(args: argparse.Namespace) -> int:
    from ..learn import load_model, train
    from ..progress import console_progress

    from ..learn import TrainConfig

    cfg = _overrides(args)
    TrainConfig.from_dict(cfg)  # option errors first, before reading or extracting anything
    kernel = _kernel_source(args, cfg)
    sharp = [str(s) for s in args.sharp] if args.sharp else None
    with console_progress("Training") as cb:
        out = train(
            cfg,
            output_dir=args.output,
            sharp=sharp,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=cb,
            **kernel,
        )
    model = load_model(out)
    best = model.config["validation"]["best"] or {}
    base = model.config["validation"]["input_baseline"]
    print(
        f"wrote {out}: {model.config['steps_done']} steps in {model.config['training_time_s']:.0f} s; "
        f"validation PSNR {best.get('psnr', float('nan')):.2f} dB, SSIM {best.get('ssim', float('nan')):.3f} "
        f"(input {base.get('psnr', float('nan')):.2f} dB, {base.get('ssim', float('nan')):.3f})"
    )
    return 0
