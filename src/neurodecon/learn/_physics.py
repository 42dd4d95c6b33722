"""The physics-aware input channel: a few Richardson–Lucy iterations (in the spirit of RLN).

The network of the physics-aware variant sees ``[raw, RL_K(raw)]`` (both mapped with the raw
volume's normalisation) and predicts a residual on top of the RL_K channel. RL_K is computed on
the *whole* volume with :func:`neurodecon.classical.deconvolve`, the training PSF and the
model's ``physics_background`` (default ``"auto"``; model folders written before the setting
existed use 0) — the same function at training (on every precomputed noisy pool realisation)
and at inference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["physics_channel", "PSF_FILE"]

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
    """``RL_K(volume)``: ``iterations`` of ``method`` with ``psf`` and ``background`` (a number
    of counts, or ``"auto"``: estimated from the volume by :func:`neurodecon.classical.deconvolve`),
    float32.
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
