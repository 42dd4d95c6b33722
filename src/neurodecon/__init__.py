"""NeuroDecon: 3D deconvolution for fluorescence microscopy.

The public API, one function per job (data flows read → PSF → method → write/evaluate)::

    import neurodecon as nd

    img = nd.read("stack.tif")  # Image: data + voxel_size_um + metadata
    psf = nd.make_psf(
        "widefield",
        shape=(33, 65, 65),
        voxel_size_um=img.voxel_size_um,
        na=1.4,
        wavelength_um=0.52,
        immersion_index=1.515,
    )
    out = nd.deconvolve(img.data, psf, method="rl", iterations="auto")
    nd.write("stack_rl.tif", img.with_data(out))

Sub-packages: ``io``, ``psf``, ``synth``, ``classical``, ``learn``, ``metrics``, ``report``.
Names are imported lazily so that ``import neurodecon`` stays fast; type checkers and IDEs see
them through the ``TYPE_CHECKING`` imports below.

Examples
--------
>>> import numpy as np
>>> import neurodecon as nd
>>> img = nd.Image(np.zeros((2, 4, 4), np.float32), voxel_size_um=(0.3, 0.1, 0.1))
>>> img.axes, img.spatial_shape, img.voxel_size_um
('ZYX', (2, 4, 4), (0.3, 0.1, 0.1))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import NeuroDeconError

if TYPE_CHECKING:  # exactly the names of _LAZY, re-exported for type checkers and IDEs
    from ._api import deconvolve as deconvolve
    from .io import Image as Image
    from .io import read as read
    from .io import write as write
    from .learn import isotropic as isotropic
    from .learn import load_model as load_model
    from .learn import train as train
    from .metrics import consistency as consistency
    from .metrics import evaluate as evaluate
    from .psf import extract_psf as extract_psf
    from .psf import make_psf as make_psf
    from .report import compare as compare
    from .synth import forward_model as forward_model
    from .synth import phantom as phantom
    from .synth import simulate as simulate

# public name -> module that defines it
_LAZY = {
    "Image": "neurodecon.io",
    "read": "neurodecon.io",
    "write": "neurodecon.io",
    "make_psf": "neurodecon.psf",
    "extract_psf": "neurodecon.psf",
    "phantom": "neurodecon.synth",
    "forward_model": "neurodecon.synth",
    "simulate": "neurodecon.synth",
    "deconvolve": "neurodecon._api",
    "evaluate": "neurodecon.metrics",
    "consistency": "neurodecon.metrics",
    "train": "neurodecon.learn",
    "load_model": "neurodecon.learn",
    "isotropic": "neurodecon.learn",
    "compare": "neurodecon.report",
}

__all__ = ["__version__", "NeuroDeconError", *_LAZY]


_SUBPACKAGES = ("io", "psf", "synth", "classical", "learn", "metrics", "report", "cli")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurodecon' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBPACKAGES])
