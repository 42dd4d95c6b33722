"""Side-by-side comparison of deconvolution methods with a visual report (``compare``, ``demo``)."""

from ._compare import compare, default_methods
from ._demo import DEMO_MICROSCOPE, demo, demo_data, demo_microscope
from ._measure import rank, small_objects
from ._methods import DEFAULT_METHODS

__all__ = [
    "compare",
    "default_methods",
    "demo",
    "demo_data",
    "rank",
    "small_objects",
    "demo_microscope",
    "DEMO_MICROSCOPE",
    "DEFAULT_METHODS",
]
