"""Point spread functions: theoretical models, validation/resampling, and extraction from beads."""

from ._beads import BeadPSF, bead_qc_figure, extract_psf, render_ideal_bead
from ._models import MODELS, make_psf, nyquist_um, textbook_fwhm_um
from ._validate import center_crop, prepare_psf, psf_info, resample_psf

__all__ = [
    "MODELS",
    "make_psf",
    "nyquist_um",
    "textbook_fwhm_um",
    "center_crop",
    "prepare_psf",
    "psf_info",
    "resample_psf",
    "BeadPSF",
    "bead_qc_figure",
    "extract_psf",
    "render_ideal_bead",
]
