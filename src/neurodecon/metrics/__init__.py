"""Image quality and resolution metrics, with and without a ground truth.

With a ground truth: PSNR, SSIM, NRMSE, RMSE, Pearson, FSC. Without one: decorrelation
resolution and SNR, bead FWHM, GLCM texture, entropy. :func:`evaluate` computes all that apply.

Noise and camera: :func:`calibrate_noise` (offset, gain, read noise and photon levels of a stack,
a :class:`NoiseCalibration`), built on :func:`estimate_background`, :func:`photon_transfer` /
:func:`estimate_gain` and :func:`structure_level`; the deconvolution's ``background="auto"`` and
``iterations="auto"`` use the same functions.
"""

from ._calibration import CALIBRATION_MAX_VOXELS, NoiseCalibration, calibrate_noise, structure_level
from ._consistency import DEFAULT_THRESHOLD, FLAGGED_LIMIT, Consistency, consistency
from ._decorrelation import DecorrelationResult, decorrelation, decorrelation_curve
from ._evaluate import METRIC_KEYS, evaluate
from ._fidelity import (
    NORMALIZATIONS,
    data_range_of,
    normalize_pair,
    nrmse,
    pearson,
    psnr,
    rmse,
    ssim,
)
from ._fourier import FourierCorrelation, frc_resolution, fsc, threshold_curve
from ._fwhm import FWHM_PER_SIGMA, bead_fwhm, line_profile_fwhm
from ._noise import (
    PhotonTransfer,
    background_from_maps,
    background_maps,
    estimate_background,
    estimate_gain,
    highpass_residual,
    photon_transfer,
)
from ._spectral import periodic_component
from ._texture import glcm_features, shannon_entropy

__all__ = [
    "evaluate",
    "consistency",
    "Consistency",
    "DEFAULT_THRESHOLD",
    "FLAGGED_LIMIT",
    "METRIC_KEYS",
    "normalize_pair",
    "NORMALIZATIONS",
    "data_range_of",
    "psnr",
    "ssim",
    "nrmse",
    "rmse",
    "pearson",
    "fsc",
    "frc_resolution",
    "threshold_curve",
    "FourierCorrelation",
    "decorrelation",
    "decorrelation_curve",
    "DecorrelationResult",
    "bead_fwhm",
    "line_profile_fwhm",
    "FWHM_PER_SIGMA",
    "glcm_features",
    "shannon_entropy",
    "periodic_component",
    "calibrate_noise",
    "NoiseCalibration",
    "CALIBRATION_MAX_VOXELS",
    "structure_level",
    "background_from_maps",
    "background_maps",
    "estimate_background",
    "estimate_gain",
    "photon_transfer",
    "PhotonTransfer",
    "highpass_residual",
]
