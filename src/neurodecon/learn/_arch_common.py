"""What the seed networks' configs share: their paper's training recipe, positive counts."""

from __future__ import annotations

from typing import Any

__all__ = ["paper_training", "check_counts"]


def paper_training(loss: str, lr: float, schedule: str, **groups: dict[str, Any]) -> dict:
    """Return a network's paper training as ``TrainConfig`` group overrides.

    The paper's loss alone (no Hessian or SSIM terms), Adam at ``lr`` with ``schedule`` and no
    warm-up, weight decay, clipping or weight averaging, the raw channel only; ``groups`` adds
    or replaces groups (e.g. ``data={"batch": 4}``).
    """
    return {
        "loss": {"kind": loss, "hessian_alpha": 0.0, "ssim_weight": 0.0},
        "optim": {
            "lr": lr,
            "schedule": schedule,
            "warmup_steps": 0,
            "weight_decay": 0.0,
            "grad_clip": 0.0,
            "ema_decay": 0.0,
        },
        "physics": {"input": "none"},
        **groups,
    }


def check_counts(config: object, names: tuple[str, ...]) -> None:
    """Raise ValueError unless every field in ``names`` is an integer ≥ 1 (booleans refused)."""
    for name in names:
        v = getattr(config, name)
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{name} {v!r} must be an integer >= 1")
