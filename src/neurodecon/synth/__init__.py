"""Synthetic data: phantoms in physical units, exact-centred convolution, camera noise model."""

from ._forward import convolve, forward_model
from ._phantoms import PHANTOMS, phantom
from ._simulate import Simulation, simulate, write_simulation

__all__ = [
    "PHANTOMS",
    "phantom",
    "convolve",
    "forward_model",
    "Simulation",
    "simulate",
    "write_simulation",
]
