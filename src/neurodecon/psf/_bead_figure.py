"""QC figure for :func:`neurodecon.psf.extract_psf` (matplotlib, Agg backend)."""

from __future__ import annotations

__all__ = ["bead_qc_figure"]


def bead_qc_figure(result, beads, path, *, log_scale: bool = False):
    raise NotImplementedError
