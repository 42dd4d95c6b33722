"""Side-by-side comparison of deconvolution methods with a visual report (``compare``, ``demo``)."""

from ._compare import compare
from ._demo import DEMO_MICROSCOPE, demo
from ._methods import DEFAULT_METHODS

__all__ = ["compare", "demo", "DEMO_MICROSCOPE", "DEFAULT_METHODS"]
