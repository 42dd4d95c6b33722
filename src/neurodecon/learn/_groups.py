"""The groups of the training configuration, one per concept, each validated on creation.

``data`` (training volumes, crops, split), ``optim`` (optimiser, schedule, weight
averaging), ``loss``, ``physics`` (the RL_K input), ``run`` (steps, time, seed, device,
intervals) and ``kernel``; the network's group is :class:`~neurodecon.learn.NetConfig`, the
noise's :class:`~neurodecon.learn.NoiseConfig` (its own module, with its calibrated defaults).
Each field carries its command-line spelling (:func:`._options.option`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._options import (
    BeadTarget,
    LossKind,
    LRSchedule,
    PhysicsInput,
    PhysicsMethod,
    as_tuple,
    check_shape,
    choice,
    fail,
    finite,
    option,
    parse_auto,
    parse_auto_int,
    parse_names,
    set_field,
)

__all__ = [
    "DataConfig",
    "OptimConfig",
    "LossConfig",
    "PhysicsConfig",
    "RunConfig",
    "KernelConfig",
]


@dataclass(frozen=True)
class DataConfig:
    """The sharp training volumes, the crops drawn from them and the validation split.

    Units: ``voxel_size_um`` in µm (z, y, x); ``pool_shape`` and ``patch`` in voxels (z, y, x).
    """

    voxel_size_um: tuple[float, float, float] | None = option(
        None,
        flag="--voxel-size",
        nargs=3,
        parse=float,
        metavar=("Z", "Y", "X"),
        help="voxel size in µm of the training data and of the images the model is for",
        default_text="the bead stack's or PSF file's; required with --model",
    )
    phantoms: tuple[str, ...] = option(
        ("ellipsoids", "tubes", "sponge", "dendrites", "clusters", "er"),
        flag="--phantoms",
        parse=parse_names,
        metavar="NAME,...",
        help="synthetic phantom families ('a+b' merges two in one volume; 'none' for none)",
    )
    n_phantoms: int = option(12, flag="--n-phantoms", parse=int, help="number of phantom volumes")
    # magnification augmentation: each phantom's feature size is the lateral voxel size times a
    # factor drawn log-uniformly from this range (the kernels are not changed)
    magnification: tuple[float, float] = option(
        (1.0, 1.0),
        flag="--magnification",
        nargs=2,
        parse=float,
        metavar=("LO", "HI"),
        help="phantom feature size × a factor drawn log-uniformly from [LO, HI] per volume",
    )
    pool_shape: tuple[int, int, int] = option(
        (48, 128, 128),
        flag="--pool-shape",
        nargs=3,
        parse=int,
        metavar=("Z", "Y", "X"),
        help="size of each sharp pool volume in voxels",
    )
    patch: tuple[int, int, int] = option(
        (32, 64, 64),
        flag="--patch",
        nargs=3,
        parse=int,
        metavar=("Z", "Y", "X"),
        help="training crop in voxels (multiples of 2^depth)",
    )
    batch: int = option(2, flag="--batch", parse=int, help="crops per step")
    fg_fraction: float = option(
        0.8,
        flag="--fg-fraction",
        parse=float,
        help="a crop's target mean is at least this fraction of its volume's",
    )
    norm_percentiles: tuple[float, float] = option((1.0, 99.8))
    val_fraction: float = option(
        0.2, flag="--val-fraction", parse=float, help="share of each kind of volume validated on"
    )
    val_crops: int = option(6, flag="--val-crops", parse=int, help="fixed validation crops")

    def __post_init__(self) -> None:
        if self.voxel_size_um is not None:
            check_shape(self, "voxel_size_um", 3, float)
        set_field(self, "phantoms", tuple(str(p) for p in as_tuple(self.phantoms)))
        from ..synth import PHANTOMS

        bad = [f for p in self.phantoms for f in p.split("+") if f not in PHANTOMS]
        if bad:
            fail("phantoms", f"has unknown families {', '.join(bad)}", f"use {', '.join(PHANTOMS)}")
        check_shape(self, "pool_shape", 3)
        check_shape(self, "patch", 3)
        check_shape(self, "magnification", 2, float)
        lo, hi = self.magnification
        if not lo <= hi:
            fail("magnification", f"{self.magnification} must be 0 < low <= high", "e.g. 0.5 2")
        check_shape(self, "norm_percentiles", 2, float)
        if not self.norm_percentiles[0] < self.norm_percentiles[1] <= 100:
            fail("norm_percentiles", f"{self.norm_percentiles} must be 0 < low < high <= 100")
        for name in ("n_phantoms", "batch", "val_crops"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= (name != "n_phantoms")):
                fail(name, f"{v!r} must be an integer >= {int(name != 'n_phantoms')}")
        if not (finite(self.fg_fraction) and self.fg_fraction >= 0):
            fail("fg_fraction", f"{self.fg_fraction!r} must be a number >= 0")
        if not (finite(self.val_fraction) and 0 <= self.val_fraction < 1):
            fail("val_fraction", f"{self.val_fraction!r} must be in [0, 1)")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then a decay (cosine), gradient clipping and weight averaging."""

    lr: float = option(
        1e-3,
        flag="--lr",
        parse=float,
        help="peak learning rate",
        default_text="1e-3; rln 0.015, rcan 1e-4, debcr 1e-3",
    )
    # after the warm-up: cosine to min_lr_fraction (NeuroDecon), exponential ×0.95 every 600
    # steps (RLN), halved every quarter of the run (3D-RCAN), or constant (DeBCR)
    schedule: LRSchedule = option(
        LRSchedule.COSINE,
        flag="--lr-schedule",
        help="learning-rate decay after the warm-up: cosine to --min-lr-fraction, exponential "
        "(×0.95 every 600 steps, RLN's), step (halved every quarter of the run, 3D-RCAN's) or "
        "constant (DeBCR's)",
        default_text="cosine; rln exponential, rcan step, debcr constant",
    )
    warmup_steps: int = option(
        50, flag="--warmup-steps", parse=int, help="steps of linear learning-rate warm-up"
    )
    min_lr_fraction: float = option(
        0.05, flag="--min-lr-fraction", parse=float, help="final rate as a fraction of the peak"
    )
    weight_decay: float = option(0.004, flag="--weight-decay", parse=float, help="AdamW decay")
    betas: tuple[float, float] = option((0.9, 0.999))
    adam_eps: float = option(1e-7)
    grad_clip: float = option(
        1.0, flag="--grad-clip", parse=float, help="gradient norm limit (0 = off)"
    )
    # exponential moving average of the weights (what is validated and saved); 0 = off
    ema_decay: float = option(
        0.99, flag="--ema-decay", parse=float, help="weight averaging decay (0 = off)"
    )

    def __post_init__(self) -> None:
        set_field(self, "schedule", choice(LRSchedule, self.schedule, "learning-rate schedule"))
        for name in ("lr", "min_lr_fraction", "weight_decay", "grad_clip", "adam_eps"):
            if not (finite(getattr(self, name)) and getattr(self, name) >= 0):
                fail(name, f"{getattr(self, name)!r} must be a number >= 0")
        if not (isinstance(self.warmup_steps, int) and self.warmup_steps >= 0):
            fail("warmup_steps", f"{self.warmup_steps!r} must be an integer >= 0")
        check_shape(self, "betas", 2, float)
        if not self.min_lr_fraction <= 1:
            fail("min_lr_fraction", f"{self.min_lr_fraction} must be <= 1")
        if not (finite(self.ema_decay) and 0.0 <= self.ema_decay < 1.0):
            fail("ema_decay", f"{self.ema_decay} must be in [0, 1)", "e.g. 0.99, or 0 to disable")


@dataclass(frozen=True)
class LossConfig:
    """``data term + α · mean ‖Hessian‖_F + ssim_weight · (1 − SSIM) + fourier_weight · F``."""

    kind: LossKind = option(
        LossKind.MAE,
        flag="--loss",
        flat="loss",
        help="data term of the loss (mae: NeuroDecon's and 3D-RCAN's), or rln / debcr: those "
        "papers' losses",
        default_text="mae; rln rln, debcr debcr",
    )
    hessian_alpha: float = option(
        0.005,
        flag="--hessian-alpha",
        parse=float,
        metavar="A",
        help="weight of the Hessian (smoothness) term",
        default_text="0.005; 0 with rln, rcan, debcr",
    )
    fourier_weight: float = option(
        0.0, flag="--fourier-weight", parse=float, metavar="W", help="weight of the Fourier term"
    )
    ssim_weight: float = option(
        0.2,
        flag="--ssim-weight",
        parse=float,
        metavar="W",
        help="add W · (1 − SSIM) to the loss",
        default_text="0.2; 0 with rln, rcan, debcr",
    )

    def __post_init__(self) -> None:
        set_field(self, "kind", choice(LossKind, self.kind, "loss"))
        for name in ("hessian_alpha", "fourier_weight", "ssim_weight"):
            if not (finite(getattr(self, name)) and getattr(self, name) >= 0):
                fail(name, f"{getattr(self, name)!r} must be a number >= 0")


@dataclass(frozen=True)
class PhysicsConfig:
    """The physics-aware variant: input channels [raw, RL_K(raw)], residual on the RL_K channel."""

    input: PhysicsInput = option(
        PhysicsInput.RL,
        flag="--physics-input",
        flat="physics",
        help="physics-aware variant: feed RL_K(raw) as a second input channel and learn a "
        "residual on top of it (--arch unet only)",
        default_text="rl; none with rln, rcan, debcr",
    )
    method: PhysicsMethod = option(
        PhysicsMethod.RL_ACCEL,
        flag="--physics-method",
        flat="physics_method",
        help="RL flavour of the physics input",
    )
    # RL iterations of RL_K, or "auto": chosen at training time (see learn._physics)
    iterations: int | str = option(
        "auto",
        flag="--physics-iterations",
        flat="physics_iterations",
        parse=parse_auto_int,
        metavar="K|auto",
        help="RL iterations of the physics input, or auto: the count whose RL_K best matches the "
        "target on a simulated training volume of this microscope (chosen once, stored in the "
        "model)",
    )
    # background (counts) of RL_K, or "auto" (estimated from each volume)
    background: float | str = option(
        "auto",
        flag="--physics-background",
        flat="physics_background",
        parse=parse_auto,
        metavar="B|auto",
        help="background (counts) the physics input's RL assumes, or auto: estimated from each "
        "volume",
    )
    draws: int = option(
        2,
        flag="--physics-draws",
        flat="physics_draws",
        parse=int,
        help="noisy realisations (and their RL_K) per photon level per pool volume",
    )

    def __post_init__(self) -> None:
        set_field(self, "input", choice(PhysicsInput, self.input, "physics input"))
        set_field(self, "method", choice(PhysicsMethod, self.method, "physics method"))
        for name in ("iterations", "draws"):
            v = getattr(self, name)
            if name == "iterations" and v == "auto":
                continue
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                fail(f"physics_{name}", f"{v!r} must be an integer >= 1")
        b = self.background
        if not (b == "auto" or (finite(b) and not isinstance(b, str) and b >= 0)):
            fail(
                "physics_background",
                f"{b!r} is neither 'auto' nor a number >= 0",
                "use auto or a background in counts, e.g. 5",
            )

    @property
    def on(self) -> bool:
        """Tell whether the physics-aware variant is on."""
        return self.input != PhysicsInput.NONE


@dataclass(frozen=True)
class RunConfig:
    """How long and where the run goes: steps, time budget, seed, device, intervals."""

    steps: int = option(5000, flag="--steps", parse=int, help="training steps")
    # wall-clock budget of the whole run in minutes (pool included): the learning-rate schedule
    # is stretched over it and training stops when it is spent (the model is written as usual)
    time_limit_min: float | None = option(
        20.0,
        flag="--time-limit",
        parse=float,
        metavar="MIN",
        help="wall-clock budget in minutes for the whole run (data pool included): the "
        "learning-rate schedule is fitted to it and training stops when it is spent",
        default_text="20; 0 = none",
    )
    seed: int = option(0, flag="--seed", parse=int, help="random seed")
    device: str = option("auto", flag="--device", help="auto | cpu | cuda (auto: CUDA if present)")
    threads: int | None = option(
        None, flag="--threads", parse=int, help="CPU threads for torch", default_text="torch's"
    )
    bf16: bool | None = option(None)  # CPU bf16 autocast; None = only where the CPU has native bf16
    val_every: int = option(100, flag="--val-every", parse=int, help="steps between validations")
    checkpoint_every: int = option(
        100, flag="--checkpoint-every", parse=int, help="steps between checkpoints"
    )
    early_stopping_patience: int = option(
        0,
        flag="--early-stopping-patience",
        parse=int,
        help="stop after this many validations without gain (0 = never)",
    )

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("val_every", 1), ("checkpoint_every", 1), ("seed", 0)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= low):
                fail(name, f"{v!r} must be an integer >= {low}")
        if not (
            isinstance(self.early_stopping_patience, int) and self.early_stopping_patience >= 0
        ):
            fail("early_stopping_patience", f"{self.early_stopping_patience!r} must be >= 0")
        if self.threads is not None and not (isinstance(self.threads, int) and self.threads >= 1):
            fail("threads", f"{self.threads!r} must be an integer >= 1")
        t = self.time_limit_min
        if t is not None and finite(t) and t == 0:  # 0 = no time limit
            set_field(self, "time_limit_min", None)
        elif t is not None and not (finite(t) and t > 0):
            fail("time limit", f"{t} min must be > 0 (0 for none)")
        if self.bf16 not in (None, True, False):
            fail("bf16", f"{self.bf16!r} must be true, false or null (auto)")
        if not isinstance(self.device, str):
            fail("device", f"{self.device!r} must be auto, cpu or cuda")


@dataclass(frozen=True)
class KernelConfig:
    """What a bead stack trains towards (the kernel sources themselves are arguments of train)."""

    # "bead" = the paper's bead mode (X = i ⊛ o*, Y = i ⊛ i*: restores to the ideal bead's
    # resolution); "psf" = PSF mode with the PSF extracted from the beads (X = i ⊛ PSF, Y = i)
    bead_target: BeadTarget = option(
        BeadTarget.PSF,
        flag="--bead-target",
        help="with --beads: 'bead' trains towards i ⊛ i* (the paper's bead mode, the ideal "
        "bead's resolution); 'psf' uses the PSF extracted from the beads (bead size "
        "deconvolved out) and trains towards the object itself",
    )

    def __post_init__(self) -> None:
        set_field(self, "bead_target", choice(BeadTarget, self.bead_target, "bead target"))
