"""Classical deconvolution: inverse filters, Landweber/Tikhonov–Miller and Richardson–Lucy family.

One FFT operator (padded OTF, Bertero–Boccacci weights, scratch buffers) is shared by every
method; CPU and CUDA run the same torch code. See ``docs/classical.md``.
"""

from ._engine import (
    DEFAULT_REGULARIZATION,
    METHODS,
    NON_NEGATIVE,
    Deconvolver,
    deconvolve,
    estimate_background,
    normalize_psf,
)
from ._operator import BOUNDARIES

__all__ = [
    "BOUNDARIES",
    "DEFAULT_REGULARIZATION",
    "METHODS",
    "NON_NEGATIVE",
    "Deconvolver",
    "deconvolve",
    "estimate_background",
    "normalize_psf",
]
