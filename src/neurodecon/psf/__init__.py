"""Point spread functions: theoretical models, validation/resampling, and extraction from beads."""

from ._bead_detect import REASONS as BEAD_REJECTION_REASONS
from ._beads import BEAD_METHODS, BeadPSF, bead_qc_figure, extract_psf, render_ideal_bead
from ._bornwolf import born_wolf_psf
from ._floor import FloorReport, check_measured_psf, clean_measured_psf, inspect_floor
from ._models import MODELS, make_psf, nyquist_um, pinhole_disk, textbook_fwhm_um
from ._resolve import OPTICS_KEYS, ResolvedPSF, default_psf_shape, resolve_psf
from ._validate import center_crop, prepare_psf, psf_info, resample_psf

__all__ = [
    "BEAD_REJECTION_REASONS",
    "BEAD_METHODS",
    "ResolvedPSF",
    "resolve_psf",
    "default_psf_shape",
    "OPTICS_KEYS",
    "MODELS",
    "make_psf",
    "FloorReport",
    "clean_measured_psf",
    "check_measured_psf",
    "inspect_floor",
    "born_wolf_psf",
    "pinhole_disk",
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
