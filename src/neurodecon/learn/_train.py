"""``train``: kernels → pool of training pairs → the loop → a self-describing model directory."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import user_error
from ..progress import ProgressFn, report
from ._calibration import calibrate_training_noise
from ._config import Calibrate, PhotonsAt, TrainConfig
from ._data import build_pool, sample_batch
from ._kernels import KERNEL_PSF_FILE, TrainingKernels
from ._loop import TrainState, run_loop, validation_metrics
from ._model import CONFIG_NAME, WEIGHTS_NAME, model_card, save_model
from ._net import count_parameters, for_voxel_size
from ._physics import PSF_FILE, choose_iterations, physics_description, physics_function
from ._volumes import split_volumes, training_volumes

__all__ = ["train", "CHECKPOINT_NAME"]

log = logging.getLogger("neurodecon")
CHECKPOINT_NAME = "checkpoint.pt"


def train(
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path,
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
    blurred_bead: np.ndarray | None = None,
    ideal_bead: np.ndarray | None = None,
    physics_psf: Any = None,
    sharp: Any = None,
    samples: Sequence[Any] | None = None,
    kernel_info: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    keep_checkpoint: bool = False,
    half_weights: bool = False,
    progress: ProgressFn | None = None,
    **overrides: Any,
) -> Path:
    """Train a network (``net.arch``: unet, rln, rcan, debcr) and write a model directory.

    Exactly one kernel source: a PSF (``psf``: file, Image or array; PSF mode: X = i ⊛ PSF,
    Y = i), a theoretical PSF (``psf_model`` with ``optics``), a bead stack (``beads`` with
    ``bead_diameter_um``; bead mode X = i ⊛ o*, Y = i ⊛ i*, or PSF mode with the extracted PSF
    when ``kernel.bead_target="psf"``), or o*/i* arrays (``blurred_bead`` and ``ideal_bead``).
    Every PSF is :func:`neurodecon.psf.resolve_psf`'s for an image of the pool's shape at the
    training voxel size (see :meth:`TrainingKernels.resolve`, which also says where the voxel
    size comes from); it is saved in the model directory.

    Parameters
    ----------
    config : TrainConfig or dict, optional
        Training options, nested or flat (:meth:`TrainConfig.from_dict`); keyword
        ``overrides`` replace single options (``steps=200``, ``physics="rl"``).
    output_dir : path
        The model directory. ``checkpoint.pt`` is written there every ``checkpoint_every`` steps.
    psf, psf_voxel_size_um, psf_background, beads, bead_diameter_um, beads_voxel_size_um
        PSF sources as in :func:`neurodecon.psf.resolve_psf`.
    bead_options : dict, optional
        Options of the bead extraction (:func:`neurodecon.psf.extract_psf`).
    psf_model, optics, psf_shape
        A theoretical PSF: ``model``, ``optics`` and ``shape`` of ``resolve_psf``.
    blurred_bead, ideal_bead : ndarray, optional
        o* and i* (bead mode) as arrays at the training voxel size.
    physics_psf : path or ndarray, optional
        The PSF of the physics-aware variant's RL_K channel with o*/i* arrays (otherwise the
        kernel PSF is used).
    sharp : folder, file, array or list of those, optional
        The user's sharp volumes; used together with ``data.phantoms`` (set ``phantoms=()``
        to train on them alone).
    samples : list of file, Image or array, optional
        Stacks of the samples the model is for, from the same camera: with
        ``noise.calibrate="auto"`` (the default) their photon levels and background light are
        measured, like the camera on the bead stack (:func:`calibrate_training_noise`), and the
        training noise is drawn around them; noise options given explicitly win.
    kernel_info : dict, optional
        Merged into ``config.json["kernel"]`` (provenance the caller knows better).
    resume : bool
        Continue from ``output_dir/checkpoint.pt`` (same config required, except
        :attr:`TrainConfig.RUNTIME_ONLY`).
    max_steps : int, optional
        Stop after this many steps without writing the final model (as if interrupted).
    progress : callable, optional
        ``progress(step, steps, message)``; returning ``False`` stops the run (checkpoints stay).

    Returns
    -------
    Path
        The model directory (``weights.pt`` + ``config.json``; see :func:`load_model`).
    """
    t_start = time.perf_counter()
    cfg = TrainConfig.from_dict(config, **overrides)
    sources = dict(
        psf=psf,
        psf_voxel_size_um=psf_voxel_size_um,
        psf_background=psf_background,
        beads=beads,
        bead_diameter_um=bead_diameter_um,
        beads_voxel_size_um=beads_voxel_size_um,
        bead_options=bead_options,
        psf_model=psf_model,
        optics=optics,
        psf_shape=psf_shape,
        blurred_bead=blurred_bead,
        ideal_bead=ideal_bead,
        physics_psf=physics_psf,
    )
    check = ("psf", "beads", "bead_diameter_um", "psf_model", "blurred_bead", "ideal_bead")
    TrainingKernels.check_sources(cfg, **{k: sources[k] for k in check})
    out = Path(output_dir)
    _check_output(out, resume=resume, overwrite=overwrite)
    if cfg.run.threads:
        torch.set_num_threads(int(cfg.run.threads))
    kernels = TrainingKernels.resolve(cfg, progress=progress, **sources)
    cfg = replace(cfg, data=replace(cfg.data, voxel_size_um=kernels.voxel_size_um))
    cfg = replace(cfg, net=for_voxel_size(cfg.net, kernels.voxel_size_um))
    explicit = cfg.noise.explicit
    calibrated = None
    if cfg.noise.calibrate == Calibrate.AUTO and (beads is not None or samples):
        channel = (bead_options or {}).get("channel")
        calibrated = calibrate_training_noise(beads=beads, samples=samples or (), channel=channel)
    cfg = replace(cfg, noise=cfg.noise.resolved(calibrated.values() if calibrated else None))
    out.mkdir(parents=True, exist_ok=True)
    ppsf = None
    if cfg.physics.on:
        if kernels.psf is None:
            raise user_error(
                "the physics-aware variant needs the PSF for its RL channel",
                fix="pass physics_psf=PSF with the o*/i* kernels, or train from beads or a PSF",
            )
        ppsf = kernels.psf
    t0 = time.perf_counter()
    volumes, data_desc = training_volumes(cfg, sharp)
    chosen = None
    if ppsf is not None and cfg.physics.iterations == "auto":
        report(progress, 0, cfg.run.steps, "choosing the physics input's RL iterations")
        k_auto, chosen = choose_iterations(cfg, ppsf, volumes, kernels.input, kernels.target)
        cfg = replace(cfg, physics=replace(cfg.physics, iterations=k_auto))
        log.info(f"physics input: RL_{k_auto} ({chosen['chosen_by']})")
    physics_fn = physics_function(cfg, ppsf) if ppsf is not None else None

    def pool_progress(done: int, total: int) -> None:
        k = cfg.physics.iterations
        report(progress, 0, cfg.run.steps, f"RL_{k} of the pool: volume {done}/{total}")

    noise = cfg.noise
    assert noise.photons is not None and noise.backgrounds is not None  # resolved above
    assert noise.read_noise is not None and noise.gain is not None and noise.offset is not None
    pool = build_pool(
        volumes,
        kernels.input,
        kernels.target,
        photons=noise.photons,
        read_noise=noise.read_noise,
        seed=cfg.run.seed + 1,
        norm_percentiles=cfg.data.norm_percentiles,
        backgrounds=noise.backgrounds,
        gain=noise.gain,
        offset=noise.offset,
        photons_at_input=noise.photons_at == PhotonsAt.INPUT,
        physics=physics_fn,
        physics_draws=cfg.physics.draws,
        physics_budget_s=_pool_budget(cfg),
        progress=pool_progress if (physics_fn and progress) else None,
    )
    train_idx, val_idx = split_volumes(data_desc["volumes"], cfg.data.val_fraction)
    data_desc.update(
        n_train=len(train_idx),
        n_val=len(val_idx),
        flips_allowed_axes=pool.flips,
        pool_build_s=round(time.perf_counter() - t0, 2),
    )
    state = TrainState(cfg)
    ckpt = out / CHECKPOINT_NAME
    if resume and ckpt.is_file():
        state.load(ckpt, cfg)
        log.info(f"resuming from step {state.step} ({ckpt})")
    d = cfg.data
    val = sample_batch(
        pool,
        val_idx or train_idx,
        d.val_crops,
        d.patch,
        np.random.default_rng(cfg.run.seed + 2),
        fg_fraction=d.fg_fraction,
    )
    if "input" not in state.val_baseline:
        baseline: dict[str, Any] = dict(validation_metrics(val[0][:, :1], val[1]))
        if physics_fn is not None:
            k = cfg.physics.iterations
            baseline[f"rl_{k}"] = validation_metrics(val[0][:, 1:2], val[1])
        state.val_baseline = baseline
    limit = cfg.run.time_limit_min
    deadline = None if limit is None else t_start + 60.0 * limit
    run_loop(state, cfg, pool, train_idx, val, ckpt, max_steps, progress, deadline)
    if (
        max_steps is not None
        and state.step < cfg.run.steps
        and not state.stopped_early
        and not state.out_of_time
    ):
        return out
    net = state.model
    if state.best_state is not None:
        net.load_state_dict(state.best_state)
    kernel = dict(kernels.record)
    if kernels.psf is not None:
        kernel["psf_file"] = PSF_FILE if cfg.physics.on else KERNEL_PSF_FILE
    kernel.update(kernel_info or {})
    noise_record = {
        "calibration": calibrated.record if calibrated else None,
        "explicit": list(explicit),
        "input_levels": pool.input_levels(),
    }
    card = model_card(
        cfg,
        noise=noise_record,
        n_parameters=count_parameters(state.net),
        kernel=kernel,
        description=kernels.description,
        training_data=data_desc,
        run=state.summary(cfg),
        physics=physics_description(cfg, chosen) if cfg.physics.on else None,
    )
    save_model(out, net.cpu(), card, half=half_weights, physics_psf=ppsf, kernel_psf=kernels.psf)
    if not keep_checkpoint and ckpt.exists():
        ckpt.unlink()
    return out


#: Share of a time limit that the physics input's pool (RL_K of every noisy realisation) may take.
POOL_SHARE = 0.3


def _pool_budget(cfg: TrainConfig) -> float | None:
    """Return the seconds the RL_K pool may take (``POOL_SHARE`` of the time limit), or None."""
    t = cfg.run.time_limit_min
    return None if t is None else POOL_SHARE * 60.0 * float(t)


def _check_output(out: Path, *, resume: bool, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise user_error(
            "the model output exists and is not a folder", path=out, fix="choose a new -o MODEL_DIR"
        )
    has_model = (out / WEIGHTS_NAME).exists() or (out / CONFIG_NAME).exists()
    if has_model and not (resume or overwrite):
        raise user_error(
            "the folder already holds a trained model",
            path=out,
            fix="choose another -o, or pass --overwrite",
        )
