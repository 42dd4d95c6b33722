"""Training configuration (saved in full into every model directory and checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ..errors import user_error
from ._net import NetConfig

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything that determines a training run, besides the kernels and the sharp volumes.

    Units: ``voxel_size_um`` in µm (z, y, x); ``patch`` and ``pool_shape`` in voxels (z, y, x);
    ``photons`` are expected photon counts at the sharp volume's robust maximum (99.9th
    percentile scaled to 1), ``backgrounds`` the expected background counts per voxel (left in
    the input, as a microscope's would be; not in the target), ``read_noise`` the Gaussian
    read-noise σ in counts. One photon level and one background are drawn per crop.
    """

    voxel_size_um: tuple[float, float, float] = (0.1, 0.05, 0.05)
    phantoms: tuple[str, ...] = ("ellipsoids", "tubes")
    # from a bead stack: "bead" = the paper's bead mode (X = i ⊛ o*, Y = i ⊛ i*: restores to the
    # ideal bead's resolution); "psf" = PSF mode with the PSF extracted from the beads (o* with the
    # bead size deconvolved out: X = i ⊛ PSF, Y = i, restores to the object itself)
    bead_target: str = "bead"
    n_phantoms: int = 10
    # magnification augmentation of the phantoms: each volume's feature size is the lateral voxel
    # size times a factor drawn log-uniformly from this range (the kernels are not changed)
    magnification: tuple[float, float] = (1.0, 1.0)
    pool_shape: tuple[int, int, int] = (48, 160, 160)
    patch: tuple[int, int, int] = (32, 64, 64)
    batch: int = 2
    steps: int = 1000
    lr: float = 5e-4
    warmup_steps: int = 50
    min_lr_fraction: float = 0.05
    weight_decay: float = 0.004
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-7
    grad_clip: float = 1.0
    ema_decay: float = 0.99  # exponential moving average of the weights (validated, saved); 0 = off
    loss: str = "mae"
    hessian_alpha: float = 0.005
    fourier_weight: float = 0.0
    ssim_weight: float = 0.0  # adds ssim_weight · (1 − SSIM(pred, target)) to the loss
    photons: tuple[float, ...] = (30.0, 100.0, 300.0, 1000.0)
    read_noise: float = 1.0
    backgrounds: tuple[float, ...] = (
        0.0,
        2.0,
        5.0,
        10.0,
    )  # background counts per voxel, drawn per crop
    fg_fraction: float = 0.8
    norm_percentiles: tuple[float, float] = (1.0, 99.8)
    val_fraction: float = 0.2
    val_every: int = 100
    val_crops: int = 6
    early_stopping_patience: int = 0
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    # wall-clock budget of the whole run in minutes (pool included): the learning-rate schedule
    # is stretched over it and training stops when it is spent (the model is written as usual)
    time_limit_min: float | None = None
    bf16: bool | None = None  # CPU bf16 autocast; None = only where the CPU has native bf16
    # physics-aware variant: input channels [raw, RL_K(raw)], residual on the RL_K channel
    physics: str = "none"  # "none" | "rl"
    physics_method: str = "rl"  # "rl" | "rl-accel" (neurodecon.classical.deconvolve)
    physics_iterations: int = 10
    physics_background: float | str = "auto"  # background (counts) of RL_K, or "auto" (estimated)
    physics_draws: int = 2  # precomputed noisy realisations (and their RL_K) per photon level
    net: NetConfig = field(default_factory=NetConfig)

    @classmethod
    def from_dict(cls, d: dict | None = None, **overrides) -> TrainConfig:
        d = {**(d or {}), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise user_error(
                f"unknown training option(s) {', '.join(unknown)}",
                fix=f"use some of {', '.join(sorted(known))}",
            )
        net = d.pop("net", None)
        cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
        if isinstance(net, dict):
            cfg.net = NetConfig(**net)
        elif isinstance(net, NetConfig):
            cfg.net = net
        if cfg.physics == "rl":
            cfg.net = replace(cfg.net, in_channels=2, residual_channel=1, zero_init_tail=True)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        m = 2**self.net.depth
        if any(p % m for p in self.patch):
            raise user_error(
                f"patch {tuple(self.patch)} is not a multiple of {m} on every axis",
                fix=f"choose patch sizes divisible by 2**depth = {m}",
            )
        if any(p > s for p, s in zip(self.patch, self.pool_shape, strict=True)):
            raise user_error(
                f"patch {tuple(self.patch)} is larger than the pool volumes {tuple(self.pool_shape)}",
                fix="use a smaller --patch or larger pool_shape",
            )
        if self.steps < 1 or self.batch < 1:
            raise user_error("steps and batch must be at least 1")
        if self.physics not in ("none", "rl"):
            raise user_error(f"unknown physics input {self.physics!r}", fix="use none or rl")
        if self.physics_method not in ("rl", "rl-accel"):
            raise user_error(
                f"unknown physics method {self.physics_method!r}", fix="use rl or rl-accel"
            )
        if self.physics_iterations < 1 or self.physics_draws < 1:
            raise user_error("physics_iterations and physics_draws must be at least 1")
        b = self.physics_background
        if not (
            b == "auto"
            or (
                isinstance(b, (int, float))
                and not isinstance(b, bool)
                and np.isfinite(b)
                and b >= 0
            )
        ):
            raise user_error(
                f"physics_background {b!r} is neither 'auto' nor a number >= 0",
                fix="use auto or a background in counts, e.g. 5",
            )
        if not self.photons or any(not (np.isfinite(p) and p > 0) for p in self.photons):
            raise user_error(
                f"photons {tuple(self.photons)} must be numbers > 0", fix="e.g. 100,300,1000"
            )
        if not self.backgrounds or any(not (np.isfinite(b) and b >= 0) for b in self.backgrounds):
            raise user_error(
                f"backgrounds {tuple(self.backgrounds)} must be numbers >= 0", fix="e.g. 0,5,10"
            )
        if self.time_limit_min is not None and not self.time_limit_min > 0:
            raise user_error(f"time limit {self.time_limit_min} min must be > 0")
        lo, hi = (float(v) for v in self.magnification)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise user_error(
                f"magnification {tuple(self.magnification)} must be 0 < low <= high",
                fix="e.g. 0.5 2",
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise user_error(
                f"ema_decay {self.ema_decay} must be in [0, 1)", fix="e.g. 0.99, or 0 to disable"
            )
        if self.bead_target not in ("bead", "psf"):
            raise user_error(f"unknown bead target {self.bead_target!r}", fix="use bead or psf")
        if self.loss not in ("mae", "mse"):
            raise user_error(f"unknown loss {self.loss!r}", fix="use mae or mse")

    def to_dict(self) -> dict:
        return asdict(self)

    # options that may differ between an interrupted run and its resumption
    RUNTIME_ONLY = ("device", "threads", "steps", "early_stopping_patience", "time_limit_min")
