"""``compare`` on the isotropic grid: Self-Net (``isotropic``) and chains (``rl+isotropic``).

When a compared method restores isotropic resolution its result lies on a finer z grid than the
input. The whole comparison then moves to that grid (the lateral pixel in all three directions):
the input and every other method's result are interpolated along z with the same cubic spline
(so ``rl`` reads as "RL + cubic z interpolation"), and a ground truth must be given on that
grid. ``NAME+isotropic`` runs the classical method ``NAME`` on the input, then Self-Net on its
result (trained on that result).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn

__all__ = ["ISOTROPIC", "isotropic_base", "run_isotropic", "IsotropicGrid"]

ISOTROPIC = "isotropic"
#: Method options of Self-Net that ``compare``'s ``method_options`` may set.
_OPTIONS = ("preset", "steps", "time_limit_min", "seed")


def isotropic_base(spec: str) -> tuple[bool, str | None]:
    """Tell whether ``spec`` is a Self-Net method, and the classical method run before it."""
    name = spec.strip().lower()
    if name == ISOTROPIC:
        return True, None
    if name.endswith("+" + ISOTROPIC):
        return True, name[: -len(ISOTROPIC) - 1]
    return False, None


class IsotropicGrid:
    """The isotropic grid of an anisotropic input: its ratio, voxel size and z resampling."""

    def __init__(self, voxel_size_um) -> None:
        from ..learn import anisotropy_ratio, isotropic_voxel_size

        self.ratio = anisotropy_ratio(voxel_size_um)
        self.voxel_size_um = isotropic_voxel_size(voxel_size_um)

    def resample(self, volume: np.ndarray) -> np.ndarray:
        """Cubic z interpolation of an input-grid volume onto the isotropic grid."""
        from ..learn import z_interpolate

        return z_interpolate(volume, self.ratio)

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape on the isotropic grid of an input-grid volume of ``shape``."""
        return self.resample(np.zeros((shape[0], 1, 1), np.float32)).shape[:1] + tuple(shape[1:])

    def check_truth(self, truth: np.ndarray, raw_shape: tuple[int, ...], path: Any) -> None:
        """Refuse a ground truth that is not on the isotropic grid."""
        shape = self.shape(raw_shape)
        if truth.shape != shape:
            raise user_error(
                f"with Self-Net methods the report is on the isotropic grid {shape}, but the "
                f"ground truth has shape {truth.shape}",
                path=path,
                fix="give the truth sampled at the lateral voxel size in z too",
            )


def run_isotropic(
    data: np.ndarray,
    voxel_size_um,
    options: dict[str, Any],
    device: str,
    progress: ProgressFn | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run Self-Net on ``data`` (the input or a classical result); returns data and parameters."""
    from ..device import resolve_device
    from ..learn import isotropic, selfnet_config

    opts = {k: v for k, v in options.items() if k in _OPTIONS and v is not None}
    config = selfnet_config(opts.get("preset", "auto"), resolve_device(device))
    if "steps" in opts:
        config = config.with_changes(steps=int(opts["steps"]))
    res = isotropic(
        data,
        voxel_size_um=voxel_size_um,
        config=config,
        time_limit_min=opts.get("time_limit_min"),
        seed=int(opts.get("seed", 0)),
        device=device,
        progress=progress,
    )
    return res.data, dict(res.metadata["isotropic"])
