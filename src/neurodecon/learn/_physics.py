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
from typing import TYPE_CHECKING, Any

import numpy as np

from ._config import TrainConfig
from ._options import PhotonsAt

if TYPE_CHECKING:
    from ._model import Model

__all__ = [
    "physics_channel",
    "physics_options",
    "physics_kernel",
    "model_physics_channel",
    "physics_function",
    "physics_description",
    "choose_iterations",
    "PSF_FILE",
    "AUTO_MAX_ITERATIONS",
]

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

    vol = np.asarray(volume, np.float32)
    k = physics_kernel(psf, vol.shape)
    return np.asarray(
        deconvolve(
            vol, k, method, iterations=int(iterations), background=background, device=device
        ),
        np.float32,
    )


def physics_kernel(psf: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Return the RL_K PSF made ready for an image of ``image_shape`` (cropped to it, sum 1)."""
    from ..psf import prepare_psf

    return prepare_psf(np.asarray(psf, np.float32), image_shape=tuple(image_shape)[-3:])


def physics_options(model: Model) -> dict[str, Any]:
    """Return the RL_K settings of a physics-aware model as a dict.

    ``method``, ``iterations`` and ``background`` (a number of counts or ``"auto"``; 0 for
    model folders older than the setting).
    """
    p = model.physics or {}
    return {
        "method": p["method"],
        "iterations": int(p["iterations"]),
        "background": p.get("background", 0.0),
    }


def model_physics_channel(model: Model, volume: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Return the RL_K channel of ``volume`` as :func:`neurodecon.learn.predict` computes it."""
    assert model.physics_psf is not None  # load_model refuses a physics model without it
    return physics_channel(volume, model.physics_psf, **physics_options(model), device=device)


#: ``physics_iterations="auto"``: the count is searched up to this many iterations, and the search
#: stops once the match has not improved for ``AUTO_PATIENCE`` iterations.
AUTO_MAX_ITERATIONS = 150
AUTO_PATIENCE = 20


def choose_iterations(
    cfg: TrainConfig,
    psf: np.ndarray,
    volumes: list[np.ndarray],
    kernel_x: np.ndarray,
    kernel_y: np.ndarray | None,
    *,
    n_volumes: int = 2,
) -> tuple[int, dict[str, Any]]:
    """Choose K of RL_K for this microscope: the count whose RL_K best matches the target.

    The first ``n_volumes`` training volumes are imaged as the pool will image them (the input
    kernel, the calibrated camera at the middle photon level and the first background), RL_K is
    run on each as at inference, and K is where the mean PSNR of RL_K against the training
    target (after :func:`neurodecon.metrics.normalize_pair`) peaks. A fixed K leaves a widefield
    input far from converged (its out-of-focus light needs many more iterations than a confocal
    one) or over-fits a low-light confocal one; the network's residual then has to make up the
    difference. Returns ``(K, record)``.
    """
    from ..device import resolve_device
    from ..metrics import normalize_pair, psnr, structure_level
    from ._data import add_noise, center_convolve

    p, n = cfg.physics, cfg.noise
    assert n.photons is not None and n.backgrounds is not None  # resolved by the caller
    photons = float(np.median(n.photons))
    bg = float(n.backgrounds[0])
    gain, offset, read = float(n.gain or 1.0), float(n.offset or 0.0), float(n.read_noise or 0.0)
    rng = np.random.default_rng(cfg.run.seed + 7)
    dev = str(resolve_device(cfg.run.device))
    curves = []
    for s in volumes[:n_volumes]:
        x = center_convolve(s, kernel_x)
        y = center_convolve(s, kernel_y)
        scale = 1.0 / max(structure_level(x), 1e-6) if n.photons_at == PhotonsAt.INPUT else 1.0
        noisy = add_noise(x, photons * scale, read, rng, background=bg, gain=gain, offset=offset)
        rl_bg = (
            "auto" if p.background == "auto" else (offset + gain * bg) / (gain * photons * scale)
        )
        curve: list[float] = []

        def track(it: int, est: np.ndarray, curve: list[float] = curve, y: np.ndarray = y) -> bool:
            curve.append(psnr(*normalize_pair(est, y), data_range=1.0))
            return it - (int(np.argmax(curve)) + 1) < AUTO_PATIENCE

        level = log.level
        log.setLevel(max(level, logging.WARNING))
        try:
            from ..classical import deconvolve
            from ..psf import prepare_psf

            k = prepare_psf(np.asarray(psf, np.float32), image_shape=noisy.shape)
            deconvolve(
                noisy,
                k,
                p.method.value,
                iterations=AUTO_MAX_ITERATIONS,
                background=rl_bg,
                device=dev,
                callback=track,
            )
        finally:
            log.setLevel(level)
        curves.append(curve)
    n_common = min(len(c) for c in curves)
    mean = np.mean([c[:n_common] for c in curves], axis=0)
    best = int(np.argmax(mean)) + 1
    record = {
        "chosen_by": "the best mean PSNR of RL_K against the training target on "
        f"{len(curves)} simulated training volume(s), searched up to {AUTO_MAX_ITERATIONS}",
        "photons": photons,
        "psnr_db_at_k": round(float(mean[best - 1]), 3),
        "psnr_db_at_1": round(float(mean[0]), 3),
    }
    return best, record


def physics_function(cfg: TrainConfig, psf: np.ndarray) -> Callable[[np.ndarray, float], Any]:
    """Return ``fn(noisy_volume, true_background) → RL_K`` for the training pool.

    ``physics.background == "auto"`` estimates the background on every pool realisation, as it
    will on the user's data; a number describes the user's data in counts, so each realisation's
    own known background (in its intensity units) is used at training instead.
    """
    from ..device import resolve_device

    dev = str(resolve_device(cfg.run.device))
    p = cfg.physics
    if not isinstance(p.iterations, int):
        raise ValueError("physics iterations must be resolved (choose_iterations) before the pool")
    k = p.iterations

    def fn(vol: np.ndarray, true_bg: float) -> np.ndarray:
        bg = "auto" if p.background == "auto" else true_bg
        level = log.level
        log.setLevel(max(level, logging.WARNING))  # not one "background=auto" line per realisation
        try:
            return physics_channel(
                vol, psf, method=p.method.value, iterations=k, background=bg, device=dev
            )
        finally:
            log.setLevel(level)

    return fn


def physics_description(cfg: TrainConfig, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the ``physics`` entry of ``config.json``: what inference needs to compute RL_K.

    ``chosen``: the record of :func:`choose_iterations` when K was chosen automatically.
    """
    p = cfg.physics
    k = p.iterations
    return {
        **({"iterations_auto": chosen} if chosen else {}),
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
