"""Point spread functions: theoretical models, validation/resampling, and extraction from beads."""

from ._models import MODELS, make_psf, nyquist_um, textbook_fwhm_um
from ._validate import center_crop, prepare_psf, psf_info, resample_psf

__all__ = [
    "MODELS", "make_psf", "nyquist_um", "textbook_fwhm_um",
    "center_crop", "prepare_psf", "psf_info", "resample_psf",
]
# bead-based PSF extraction (beads helper) is re-exported below
