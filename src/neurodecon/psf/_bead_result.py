"""The result of a bead extraction (:class:`BeadPSF`) and the helpers both methods share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import user_error

__all__ = ["BeadPSF", "fwhm_um", "rejected_list", "no_beads_error"]


@dataclass
class BeadPSF:
    """Result of :func:`extract_psf`. Arrays are (Z, Y, X) float32, centred at ``n//2``, sum 1.

    Attributes
    ----------
    psf : ndarray
        PSF with the bead size removed (p in o* = i* ⊛ p), for classical deconvolution.
    blurred_bead : ndarray
        The bead image o* (NeuroDecon's blurred bead): ``i* ⊛ p`` with the joint method, the
        averaged bead with ``method="average"``.
    ideal_bead : ndarray
        Ideal bead i*: the sphere of the bead diameter, anti-aliased.
    voxel_size_um : tuple of 3 floats
    n_used : int
        Beads whose data entered the estimate.
    rejected : list of ((z, y, x), reason)
        Every other detected bead, with a reason code (see
        :data:`neurodecon.psf.BEAD_REJECTION_REASONS`). With the joint method these beads stay in
        the model (their light elsewhere is accounted for); only their neighbourhood is left out.
    positions : ndarray, shape (n_used, 3)
        Sub-voxel centres (voxels) of the beads used.
    fwhm_um : tuple of 3 floats
        FWHM (z, y, x) of ``blurred_bead`` in µm.
    fwhm_spread_um : tuple of 3 floats
        Standard deviation of the per-bead FWHM across the beads used, µm.
    psf_fwhm_um : tuple of 3 floats
        FWHM of ``psf`` (bead removed) in µm.
    info : dict
        Detection threshold, noise, background, methods used (JSON-friendly).
    method : str
        ``"joint"`` or ``"average"``.
    flux_per_plane : ndarray or None
        Fraction of the PSF's flux in each of its planes (joint method).
    flux_sigma : ndarray or None
        Approximate standard error of ``flux_per_plane``.
    qc : dict
        Arrays for the QC figure (projections of the data, the re-synthesised stack, the
        residual and the data weights; flux per plane of the measured, model and hybrid PSF).
    """

    psf: np.ndarray
    blurred_bead: np.ndarray
    ideal_bead: np.ndarray
    voxel_size_um: tuple[float, float, float]
    n_used: int
    rejected: list[tuple[tuple[float, float, float], str]]
    positions: np.ndarray
    fwhm_um: tuple[float, float, float]
    fwhm_spread_um: tuple[float, float, float]
    psf_fwhm_um: tuple[float, float, float] = (float("nan"),) * 3
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "average"
    flux_per_plane: np.ndarray | None = None
    flux_sigma: np.ndarray | None = None
    qc: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def rejection_counts(self) -> dict[str, int]:
        """Number of rejected beads per reason code."""
        return dict(Counter(reason for _, reason in self.rejected))

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (what ``neurodecon psf extract --json`` prints)."""
        out = {
            "method": self.method,
            "n_used": self.n_used,
            "n_rejected": len(self.rejected),
            "rejected_by_reason": self.rejection_counts,
            "voxel_size_um": list(self.voxel_size_um),
            "shape": list(self.psf.shape),
            "fwhm_um": [round(v, 4) for v in self.fwhm_um],
            "fwhm_spread_um": [round(v, 4) for v in self.fwhm_spread_um],
            "psf_fwhm_um": [round(v, 4) for v in self.psf_fwhm_um],
            **{k: v for k, v in self.info.items() if k != "per_bead_fwhm_um"},
            "positions_used_zyx": [[round(float(v), 3) for v in p] for p in self.positions],
            "rejected": [
                {"position_zyx": [float(v) for v in p], "reason": r} for p, r in self.rejected
            ],
        }
        if self.flux_per_plane is not None:
            out["flux_per_plane"] = [float(f"{v:.4g}") for v in self.flux_per_plane]
        return out


def fwhm_um(volume: np.ndarray, vox) -> np.ndarray:
    """FWHM (z, y, x) in µm through the centre ``n//2`` (``neurodecon.metrics.bead_fwhm``)."""
    from ..metrics import bead_fwhm

    return np.array(bead_fwhm(volume, vox, center=tuple(float(n // 2) for n in volume.shape)))


def rejected_list(positions: np.ndarray, reasons: list[str | None]):
    """``[((z, y, x), reason), ...]`` for every candidate with a reason."""
    return [
        (tuple(float(v) for v in positions[i]), r) for i, r in enumerate(reasons) if r is not None
    ]


_HINTS = {
    "close": "the beads are too dense for the crop: use --method joint, give a smaller --size "
    "or a sparser bead field",
    "border": "move the beads away from the stack border (a larger field or z range) or give a "
    "smaller --size",
    "saturated": "re-acquire with lower laser power or gain, or set the saturation level",
}


def no_beads_error(cands, reasons, path):
    """One-line user error naming why every detected bead was rejected."""
    counts = Counter(r for r in reasons if r)
    parts = ", ".join(f"{n} {r}" for r, n in counts.most_common())
    top = counts.most_common(1)[0][0] if counts else ""
    hint = _HINTS.get(
        top, "check the channel, the saturation and that the stack shows isolated beads"
    )
    return user_error(
        f"no usable beads: {len(reasons)} detected, all rejected ({parts})", path=path, fix=hint
    )
