"""Self-Net's configuration: the network sizes and the training budget, CPU and paper presets.

Saved into every Self-Net model directory (``selfnet.json``) so that a model explains itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import user_error

__all__ = ["SelfNetConfig", "PRESETS"]


#: The smallest training patch the networks take (the discriminators' strides).
MIN_PATCH = 16


@dataclass(frozen=True)
class SelfNetConfig:
    """Sizes and budget of one Self-Net training.

    Attributes
    ----------
    channels : int
        Feature channels of the generators and the deblurring network (paper: 64).
    blocks : int
        Residual blocks of each generator (paper: 6).
    disc_channels : int
        Channels of the first PatchGAN layer (paper: 64).
    patch : int
        Side of the square training patches in pixels (paper: 64).
    batch : int
        Patches per step (paper: 8).
    steps : int
        Training steps; each updates the two generators, the deblurring network and (every
        second step) the two discriminators, as the authors' code does.
    lr : float
        Adam learning rate of every network (paper: 1e-4, betas 0.5 and 0.999); halved at 50 %
        and 75 % of the steps.
    gan_weight, ssim_weight, feedback_weight : float
        LSGAN weight (0.1), the weight of 1 − SSIM next to the Charbonnier loss (authors: 0.1;
        the ``cpu`` preset 0: measured +0.05 dB and a higher SSIM, docs/isotropic.md), and the
        weight of the deblurring network's loss fed back into the degradation generator (0.1,
        from the second tenth of the steps on, as the authors' feedback after the first epoch).
    checkpoint_s : float
        Seconds between two checkpoints of a training with a model directory.
    match_blur : bool
        Blur the degraded lateral planes by the axial blur measured on the stack (spectra of
        the lateral vs the axial planes) before the GAN refines it; ``False`` is the authors'
        degradation (resampling only). See docs/isotropic.md.
    average_decay : float
        The restoring network is the exponential moving average of the deblurring network's
        weights over the steps, with this decay per step (0.995: about the last 200 steps); 0
        keeps the last step's weights. The decay ramps up as ``(1 + step) / (10 + step)``, which
        stays below 0.995 for 1790 steps: shorter trainings weigh step ``s`` about as ``s⁸``.
    rotate : bool
        Augment the patches by all 8 rotations / reflections (the authors' code); ``False``
        keeps the degraded / axial direction along the patch rows (4 of them), where the xz
        and yz planes have z when they are restored.
    """

    channels: int = 24
    blocks: int = 3
    disc_channels: int = 16
    patch: int = 48
    batch: int = 4
    steps: int = 1500
    lr: float = 4e-4
    gan_weight: float = 0.1
    ssim_weight: float = 0.0
    feedback_weight: float = 0.1
    checkpoint_s: float = 60.0
    match_blur: bool = True
    rotate: bool = False
    average_decay: float = 0.995

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("match_blur", "rotate"):
                continue
            if f.name in ("gan_weight", "feedback_weight", "ssim_weight", "average_decay"):
                if not value >= 0:
                    raise user_error(f"Self-Net option {f.name} must not be negative, not {value}")
                continue
            if not value > 0:
                raise user_error(f"Self-Net option {f.name} must be positive, not {value}")
        if not self.average_decay < 1:
            raise user_error(
                f"Self-Net average_decay must be below 1, not {self.average_decay}",
                fix="use 0 (no average) or e.g. 0.995",
            )
        if self.patch < MIN_PATCH:
            raise user_error(
                f"Self-Net patch {self.patch} is too small", fix=f"use {MIN_PATCH} or more"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SelfNetConfig:
        """Build from a dict (unknown keys are refused)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise user_error(f"unknown Self-Net options: {', '.join(unknown)}")
        return cls(**values)

    def with_changes(self, **changes: Any) -> SelfNetConfig:
        """Return a copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


#: ``cpu``: small networks that train in minutes on two cores; ``paper``: the authors' sizes
#: (generators ≈ 0.6 M parameters), for a GPU.
PRESETS: dict[str, SelfNetConfig] = {
    "cpu": SelfNetConfig(),
    "paper": SelfNetConfig(
        channels=64,
        blocks=6,
        disc_channels=64,
        patch=64,
        batch=8,
        steps=20000,
        lr=1e-4,
        ssim_weight=0.1,
    ),
}
