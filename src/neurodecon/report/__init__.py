"""Side-by-side comparison of deconvolution methods with a visual report (``compare``, ``demo``)."""

from ._compare import compare
from ._demo import DEMO_MICROSCOPE, demo, demo_microscope
from ._methods import DEFAULT_METHODS

__all__ = ["compare", "demo", "demo_microscope", "DEMO_MICROSCOPE", "DEFAULT_METHODS"]
