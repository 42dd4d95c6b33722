"""The physics-aware input channel: a few Richardson–Lucy iterations (in the spirit of RLN).

The network of the physics-aware variant sees ``[raw, RL_K(raw)]`` (both mapped with the raw
volume's normalisation) and predicts a residual on top of the RL_K channel. RL_K is computed on
the *whole* volume with :func:`neurodecon.classical.deconvolve`, the training PSF and the
model's ``physics_background`` (default ``"auto"``; model folders written before the setting
existed use 0) — the same function at training (on every precomputed noisy pool realisation)
and at inference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ._config import TrainConfig

__all__ = ["physics_channel", "physics_function", "physics_description", "PSF_FILE"]

log = logging.getLogger("neurodecon")

#: The RL_K PSF in a model directory of the physics-aware variant.
PSF_FILE = "physics_psf.npy"


def physics_channel(
    volume: np.ndarray,
    psf: np.ndarray,
    *,
    method: str,
    iterations: int,
    background: float | str = 0.0,
    device: str = "cpu",
) -> np.ndarray:
    """Return ``RL_K(volume)``, float32.

    ``iterations`` of ``method`` with ``psf`` and ``background`` (a number of counts, or
    ``"auto"``: estimated from the volume by :func:`neurodecon.classical.deconvolve`).
    """
    from ..classical import deconvolve
    from ..psf import prepare_psf

    vol = np.asarray(volume, np.float32)
    k = prepare_psf(np.asarray(psf, np.float32), image_shape=vol.shape)
    return np.asarray(
        deconvolve(
            vol, k, method, iterations=int(iterations), background=background, device=device
        ),
        np.float32,
    )


def physics_function(cfg: TrainConfig, psf: np.ndarray) -> Callable[[np.ndarray, float], Any]:
    """Return ``fn(noisy_volume, true_background) → RL_K`` for the training pool.

    ``physics.background == "auto"`` estimates the background on every pool realisation, as it
    will on the user's data; a number describes the user's data in counts, so each realisation's
    own known background (in its intensity units) is used at training instead.
    """
    from ..device import resolve_device

    dev = str(resolve_device(cfg.run.device))
    p = cfg.physics

    def fn(vol: np.ndarray, true_bg: float) -> np.ndarray:
        bg = "auto" if p.background == "auto" else true_bg
        level = log.level
        log.setLevel(max(level, logging.WARNING))  # not one "background=auto" line per realisation
        try:
            return physics_channel(
                vol, psf, method=p.method.value, iterations=p.iterations, background=bg, device=dev
            )
        finally:
            log.setLevel(level)

    return fn


def physics_description(cfg: TrainConfig) -> dict[str, Any]:
    """Return the ``physics`` entry of ``config.json``: what inference needs to compute RL_K."""
    p = cfg.physics
    k = p.iterations
    return {
        "input": p.input.value,
        "method": p.method.value,
        "iterations": k,
        "background": p.background,
        "training_background": p.background
        if p.background == "auto"
        else "the known background of each training realisation",
        "psf_file": PSF_FILE,
        "channels": ["raw", f"rl_{k}"],
        "residual": f"the network adds its output to the normalised rl_{k} channel",
        "computed_on": "the whole volume (each channel/time point), before tiling",
        "training_realisations": f"{p.draws} noisy draws per photon level per pool volume",
    }
