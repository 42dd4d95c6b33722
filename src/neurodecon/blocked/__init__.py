"""Volumes larger than memory: any method or trained network block by block, here or on Dask.

``deconvolve_blocked`` reads a stack lazily (``neurodecon.io.open_lazy``), makes the global
decisions once (background, flat start, ``iterations="auto"``), processes blocks with a halo
derived from the PSF (``default_halo``) and writes their cores into a pre-created OME-Zarr
(``OUT.incomplete``, renamed when complete, with a multiscale pyramid). Finished blocks leave a
marker, so ``resume=True`` continues an interrupted run. ``model=`` runs a trained network the
same way (``ModelRunner``: predict's normalisation and RL_K settings decided once per frame).
See ``docs/blocked.md``.
"""

from ._api import (
    BlockedRun,
    block_bytes,
    deconvolve_blocked,
    incomplete_path,
    whole_volume_fits,
)
from ._model_runner import ModelRunner
from ._plan import (
    Block,
    BlockPlan,
    default_halo,
    fit_block,
    plan_blocks,
    psf_half_support,
)
from ._tasks import ClassicalRunner, run_task

__all__ = [
    "deconvolve_blocked",
    "BlockedRun",
    "incomplete_path",
    "block_bytes",
    "whole_volume_fits",
    "Block",
    "BlockPlan",
    "plan_blocks",
    "default_halo",
    "fit_block",
    "psf_half_support",
    "ClassicalRunner",
    "ModelRunner",
    "run_task",
]
