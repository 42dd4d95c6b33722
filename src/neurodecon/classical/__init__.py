"""Classical deconvolution: inverse filters, Landweber/Tikhonov–Miller and Richardson–Lucy family.

One FFT operator (padded OTF, Bertero–Boccacci weights, scratch buffers) is shared by every
method; CPU and CUDA run the same torch code. See ``docs/classical.md``.

Public submodules: :mod:`neurodecon.classical.stopping` (the ``iterations="auto"`` rule and its
parts) and :mod:`neurodecon.classical.spectra` (the noise and power spectra of the Wiener filter).
"""

from ..metrics import estimate_background
from ._deconvolve import deconvolve
from ._engine import Deconvolver
from ._inputs import (
    BACKGROUND_MODES,
    INITIAL_ESTIMATES,
    check_method,
    normalize_psf,
    parse_iterations,
)
from ._memory import deconvolution_bytes
from ._methods import (
    DEFAULT_REGULARIZATION,
    DIRECT_METHODS,
    ITERATIVE_METHODS,
    METHODS,
    NON_NEGATIVE,
    POISSON_METHODS,
)
from ._operator import BOUNDARIES, Geometry, plan_geometry
from ._result import DeconvolutionResult
from .stopping import ACCELERATED_FACTOR

__all__ = [
    "ACCELERATED_FACTOR",
    "BACKGROUND_MODES",
    "BOUNDARIES",
    "INITIAL_ESTIMATES",
    "DEFAULT_REGULARIZATION",
    "DIRECT_METHODS",
    "ITERATIVE_METHODS",
    "METHODS",
    "NON_NEGATIVE",
    "POISSON_METHODS",
    "DeconvolutionResult",
    "Deconvolver",
    "Geometry",
    "deconvolve",
    "deconvolution_bytes",
    "estimate_background",
    "normalize_psf",
    "parse_iterations",
    "check_method",
    "plan_geometry",
]
