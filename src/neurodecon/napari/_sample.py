"""Sample data: the demo's simulated confocal stack (with its ground truth) and bead stack.

Made on the fly by :func:`neurodecon.report.demo_data` (quick sizes, fixed seeds): nothing is
downloaded. No Qt imports.
"""

from __future__ import annotations

import functools
from typing import Any

from ..io import Image
from ._layers import image_layer_data

__all__ = ["demo_stack", "demo_beads"]


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from ..report import demo_data

    return demo_data(quick=True)


def demo_stack() -> list[tuple[Any, dict[str, Any], str]]:
    """Return the demo sample (24 × 64 × 64, confocal, noisy) and its ground truth (hidden)."""
    d = _data()
    vs = d["voxel_size_um"]
    return [
        image_layer_data(Image(d["sample"], voxel_size_um=vs), "demo sample"),
        image_layer_data(Image(d["truth"], voxel_size_um=vs), "demo truth", visible=False),
    ]


def demo_beads() -> list[tuple[Any, dict[str, Any], str]]:
    """Return the demo bead stack (32 × 160 × 160; 100 nm beads, same microscope as the sample)."""
    d = _data()
    return [image_layer_data(Image(d["beads"], voxel_size_um=d["voxel_size_um"]), "demo beads")]
