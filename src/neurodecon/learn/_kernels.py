"""The kernels of a training run, from a PSF (file, array or model), a bead stack, or o*/i*.

PSF mode: X = i ⊛ PSF, Y = i. Bead mode (the paper's): X = i ⊛ o*, Y = i ⊛ i*, with the blurred
bead o* and the ideal bead i* of a bead extraction. Every PSF comes from
:func:`neurodecon.psf.resolve_psf` for an "image" of the pool's shape at the training voxel size,
so the PSF that ``train`` uses is the one ``neurodecon deconvolve --psf-out`` writes for the same
source and such an image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn
from ._config import BeadTarget, TrainConfig

__all__ = ["TrainingKernels", "KERNEL_PSF_FILE"]

log = logging.getLogger("neurodecon")

#: The kernel PSF in a model directory (the physics-aware variant's ``physics_psf.npy`` instead).
KERNEL_PSF_FILE = "kernel_psf.npy"

#: Training voxel size when every kernel is a bare array and none is configured (logged).
ARRAY_VOXEL_SIZE_UM = (0.1, 0.05, 0.05)

_VOXEL_FIX = "add --voxel-size Z Y X (µm; voxel_size_um= in Python)"


@dataclass(frozen=True)
class TrainingKernels:
    """The kernels of a training run and where they came from.

    Attributes
    ----------
    input : (Z, Y, X) ndarray
        X = i ⊛ ``input``: the PSF (PSF mode) or the blurred bead o* (bead mode).
    target : (Z, Y, X) ndarray or None
        Y = i ⊛ ``target``: the ideal bead i* (bead mode); None (identity) in PSF mode.
    psf : (Z, Y, X) ndarray or None
        The PSF at the training voxel size (``resolve_psf(...).psf``): PSF mode's input and the
        physics-aware variant's RL kernel; None for o*/i* arrays given without ``physics_psf``.
    voxel_size_um : (z, y, x)
        The training voxel size.
    mode : str
        ``"psf"``, ``"beads"`` (bead mode) or ``"psf from beads"``.
    record : dict
        JSON provenance: the ``kernel`` entry of ``config.json`` (with ``resolved``, the
        :attr:`neurodecon.psf.ResolvedPSF.record`).
    """

    input: np.ndarray
    target: np.ndarray | None
    psf: np.ndarray | None
    voxel_size_um: tuple[float, float, float]
    mode: str
    record: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def check_sources(
        config: TrainConfig,
        *,
        psf: Any = None,
        beads: Any = None,
        bead_diameter_um: float | None = None,
        psf_model: str | None = None,
        blurred_bead: Any = None,
        ideal_bead: Any = None,
    ) -> None:
        """Refuse a missing or doubled kernel source, before anything is read (one-line errors)."""
        arrays = blurred_bead is not None or ideal_bead is not None
        given = [psf is not None, beads is not None, psf_model is not None, arrays]
        if not any(given):
            raise user_error(
                "no kernel source given",
                fix="pass --beads FILE --bead-diameter UM, --psf FILE, or --model MODEL",
            )
        if arrays and sum(given) > 1:
            raise user_error(
                "training needs exactly one kernel source",
                fix="pass a PSF, a bead stack (with its bead diameter), or o*/i* bead kernels",
            )
        if beads is not None and bead_diameter_um is None:
            raise user_error(
                "training from beads needs the bead diameter",
                fix="add --bead-diameter UM (bead_diameter_um= in Python), e.g. 0.1 for 100 nm",
            )
        if arrays and (blurred_bead is None or ideal_bead is None):
            raise user_error("bead mode needs both the blurred bead o* and the ideal bead i*")
        if arrays and config.kernel.bead_target == BeadTarget.PSF:
            raise user_error(
                "bead_target='psf' needs the bead stack (or the PSF itself), not o*/i*",
                fix="pass beads=STACK with bead_diameter_um, or psf=PSF",
            )

    @classmethod
    def resolve(
        cls,
        config: TrainConfig,
        *,
        psf: Any = None,
        psf_voxel_size_um: Sequence[float] | None = None,
        psf_background: float | str | None = "auto",
        beads: Any = None,
        bead_diameter_um: float | None = None,
        beads_voxel_size_um: Sequence[float] | None = None,
        bead_options: Mapping[str, Any] | None = None,
        psf_model: str | None = None,
        optics: Mapping[str, Any] | None = None,
        psf_shape: Sequence[int] | None = None,
        blurred_bead: Any = None,
        ideal_bead: Any = None,
        physics_psf: Any = None,
        progress: ProgressFn | None = None,
    ) -> TrainingKernels:
        """Return the kernels for ``config`` from exactly one source.

        Parameters
        ----------
        config : TrainConfig
            ``data.pool_shape`` and ``data.voxel_size_um`` are the "image" the PSF is resolved
            for; ``kernel.bead_target`` chooses bead or PSF mode for a bead stack.
        psf, psf_voxel_size_um, psf_background, beads, bead_diameter_um, beads_voxel_size_um
            As :func:`neurodecon.psf.resolve_psf` (a bead stack needs its bead diameter).
        bead_options : dict, optional
            Options of the bead extraction.
        psf_model, optics, psf_shape
            A theoretical PSF: ``model``, ``optics`` and ``shape`` of ``resolve_psf``.
        blurred_bead, ideal_bead : ndarray, optional
            o* and i* as arrays (bead mode), at the training voxel size.
        physics_psf : path or ndarray, optional
            The PSF of the physics-aware variant's RL channel with o*/i* arrays.
        progress : callable, optional
            Passed to the bead extraction.

        Notes
        -----
        The training voxel size is ``config.data.voxel_size_um`` when set, else the bead stack's
        or PSF file's (its metadata or ``*_voxel_size_um``); a PSF is resampled to it. A model
        PSF, or a PSF file without a voxel size, then needs it set; a bead stack always needs its
        own. Bare arrays are taken at the training voxel size; when every kernel is one and none
        is set, training runs at :data:`ARRAY_VOXEL_SIZE_UM` (logged).
        """
        from ..psf import resolve_psf

        cls.check_sources(
            config,
            psf=psf,
            beads=beads,
            bead_diameter_um=bead_diameter_um,
            psf_model=psf_model,
            blurred_bead=blurred_bead,
            ideal_bead=ideal_bead,
        )
        vox: Sequence[float] | None = config.data.voxel_size_um
        # the files' own voxel sizes (read once here, handed on as Images); a bead stack needs
        # one, a PSF file only when it sets the training voxel size
        beads, beads_vox = _with_voxel_size(beads, beads_voxel_size_um, "bead stack", need=True)
        psf, psf_vox = _with_voxel_size(psf, psf_voxel_size_um, "PSF", need=vox is None)
        vox = vox or psf_vox or beads_vox
        if vox is None and psf_model is not None:
            raise user_error(
                "training from a PSF model needs the voxel size of the data it is meant for",
                fix=_VOXEL_FIX,
            )
        if vox is None:
            vox = ARRAY_VOXEL_SIZE_UM
            log.info(f"the kernels are arrays without a voxel size: training at {vox} µm")
        vox = (float(vox[0]), float(vox[1]), float(vox[2]))
        if beads is not None and beads_voxel_size_um is None and _is_array(beads):
            beads_voxel_size_um = vox  # a bare bead array is at the training voxel size
        shape = config.data.pool_shape
        record: dict[str, Any] = {}
        if blurred_bead is not None:  # o*/i* arrays: no PSF unless one is given for RL_K
            o, i = _unit(blurred_bead, "blurred bead"), _unit(ideal_bead, "ideal bead")
            kpsf = None
            if physics_psf is not None:
                r = resolve_psf(image_shape=shape, image_voxel_size_um=vox, psf=physics_psf)
                kpsf, record = r.psf, {"source": r.description, "resolved": r.record}
            record.update(blurred_bead_shape=list(o.shape), ideal_bead_shape=list(i.shape))
            return cls(o, i, kpsf, vox, "beads", {"mode": "beads", **record})
        resolved = resolve_psf(
            image_shape=shape,
            image_voxel_size_um=vox,
            psf=psf,
            psf_voxel_size_um=psf_voxel_size_um,
            psf_background=psf_background,
            beads=beads,
            bead_diameter_um=bead_diameter_um,
            beads_voxel_size_um=beads_voxel_size_um,
            bead_options=bead_options,
            model=psf_model,
            optics=optics,
            shape=psf_shape,
            progress=progress,
        )
        kpsf = resolved.psf
        record = {"source": resolved.description, "resolved": resolved.record}
        if psf_model is not None:  # read back by `neurodecon demo` and the tests
            record["psf_params"] = {**resolved.record, "voxel_size_um": list(vox)}
        bp = resolved.beads
        if bp is None:
            return cls(
                kpsf,
                None,
                kpsf,
                vox,
                "psf",
                {"mode": "psf", "psf_shape": list(kpsf.shape), **record},
            )
        record.update(
            bead_diameter_um=resolved.record.get("bead_diameter_um"),
            n_beads_used=int(bp.n_used),
            n_beads_rejected=len(bp.rejected),
            psf_fwhm_um=[float(v) for v in bp.fwhm_um],
        )
        if config.kernel.bead_target == BeadTarget.PSF:
            return cls(
                kpsf,
                None,
                kpsf,
                vox,
                "psf from beads",
                {"mode": "psf from beads", "psf_shape": list(kpsf.shape), **record},
            )
        o, i = _bead_kernels(bp, vox, shape)
        record.update(blurred_bead_shape=list(o.shape), ideal_bead_shape=list(i.shape))
        return cls(o, i, kpsf, vox, "beads", {"mode": "beads", **record})

    @property
    def description(self) -> str:
        """Return the training pairs in words (the ``description`` of ``config.json``)."""
        if self.mode == "beads":
            return "X = i ⊛ o*, Y = i ⊛ i* (bead mode)"
        return "X = i ⊛ PSF, Y = i (PSF mode)"


def _is_array(obj: Any) -> bool:
    from ..io import Image

    return not isinstance(obj, str | os.PathLike | Image)


def _with_voxel_size(
    source: Any, given: Sequence[float] | None, what: str, *, need: bool
) -> tuple[Any, tuple[float, ...] | None]:
    """Return a PSF or bead source (a file read into an Image) and its own voxel size.

    The voxel size is ``given``, else the file's or Image's metadata; None for a bare array,
    which has none of its own, and for a file without one unless ``need`` makes that an error.
    """
    if source is None or (given is None and _is_array(source)):
        return source, None
    if given is not None:
        return source, tuple(float(v) for v in given)
    from ..io import as_image, source_of

    beads = what == "bead stack"
    img = as_image(source, what=f"the {what}", check=beads)
    if not img.voxel_size_assumed:
        return img, tuple(img.voxel_size_um)
    if need:
        raise user_error(
            f"the {what} has no voxel size in its metadata",
            path=source_of(source),
            fix="add --beads-voxel-size Z Y X (µm; beads_voxel_size_um=)" if beads else _VOXEL_FIX,
        )
    return img, None


def _bead_kernels(bp: Any, vox: tuple[float, float, float], shape: Sequence[int]):
    """o* and i* of a bead extraction at the training voxel size (resampled when it differs)."""
    o, i = bp.blurred_bead, bp.ideal_bead
    src = tuple(float(v) for v in bp.voxel_size_um)
    if any(abs(a - b) > 0.01 * b for a, b in zip(src, vox, strict=True)):
        from ..psf import prepare_psf

        log.info(f"bead kernels o*, i*: resampled from the beads' {src} to {vox} µm")
        o, i = (
            prepare_psf(k, image_shape=shape, psf_voxel_size_um=src, image_voxel_size_um=vox)
            for k in (o, i)
        )
    return _unit(o, "blurred bead"), _unit(i, "ideal bead")


def _unit(k: Any, what: str) -> np.ndarray:
    k = np.asarray(k, np.float32)
    if k.ndim != 3 or not np.all(np.isfinite(k)) or k.sum() <= 0:
        raise user_error(f"the {what} must be a finite 3D array with a positive sum")
    return k / k.sum()
