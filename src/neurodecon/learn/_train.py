"""The training loop: pool → batches → AdamW with warm-up + cosine → validation → checkpoints."""

from __future__ import annotations

import copy
import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..device import resolve_device
from ..errors import user_error
from ..progress import ProgressFn, report
from ._config import TrainConfig
from ._data import Pool, build_pool, private_phantom, sample_batch, scale_to_unit
from ._loss import neurodecon_loss
from ._model import CONFIG_NAME, WEIGHTS_NAME, save_model
from ._net import build_network, count_parameters

__all__ = ["train", "CHECKPOINT_NAME"]

log = logging.getLogger("neurodecon")
CHECKPOINT_NAME = "checkpoint.pt"


def train(
    config: TrainConfig | dict | None = None,
    *,
    output_dir: str | Path,
    psf: np.ndarray | None = None,
    blurred_bead: np.ndarray | None = None,
    ideal_bead: np.ndarray | None = None,
    beads: np.ndarray | None = None,
    bead_diameter_um: float | None = None,
    sharp: Any = None,
    physics_psf: np.ndarray | None = None,
    kernel_info: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    keep_checkpoint: bool = False,
    half_weights: bool = False,
    progress: ProgressFn | None = None,
    **overrides: Any,
) -> Path:
    """Train a NeuroDecon network and write a self-describing model directory.

    Exactly one kernel source: ``psf`` (PSF mode: X = i ⊛ PSF, Y = i), ``blurred_bead`` and
    ``ideal_bead`` (bead mode, o* and i*: X = i ⊛ o*, Y = i ⊛ i*), or a raw ``beads`` stack from
    which :func:`neurodecon.psf.extract_psf` computes o* and i*. Kernels share the config's
    ``voxel_size_um``.

    Parameters
    ----------
    config : TrainConfig or dict, optional
        Training options; keyword ``overrides`` replace single fields (``steps=200``).
    output_dir : path
        The model directory. ``checkpoint.pt`` is written there every ``checkpoint_every`` steps.
    sharp : folder, file, array or list of those, optional
        The user's sharp volumes; used together with ``config.phantoms`` (set ``phantoms=()``
        to train on them alone).
    resume : bool
        Continue from ``output_dir/checkpoint.pt`` (same config required, except steps/device/threads).
    physics_psf : ndarray, optional
        The PSF for the physics-aware variant's RL_K channel (``physics="rl"``) when the kernels
        are given as o*/i* arrays; taken from ``psf`` or from ``extract_psf`` otherwise.
    max_steps : int, optional
        Stop after this many steps without writing the final model (as if interrupted).
    progress : callable, optional
        ``progress(step, steps, message)``; returning ``False`` stops the run (checkpoints stay).

    Returns
    -------
    Path of the model directory (``weights.pt`` + ``config.json``).
    """
    t_start = time.perf_counter()
    cfg = TrainConfig.from_dict(
        config.to_dict() if isinstance(config, TrainConfig) else config, **overrides
    )
    out = Path(output_dir)
    _check_output(out, resume=resume, overwrite=overwrite)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    kx, ky, kinfo = _kernels(cfg, psf, blurred_bead, ideal_bead, beads, bead_diameter_um, progress)
    kinfo.update(kernel_info or {})
    ppsf, physics_fn = _physics(cfg, psf, physics_psf, kinfo)
    t0 = time.perf_counter()
    sources, data_desc = _sources(cfg, sharp)

    def pool_progress(done, total):
        report(
            progress,
            0,
            cfg.steps,
            f"RL_{cfg.physics_iterations} of the pool: volume {done}/{total}",
        )

    pool = build_pool(
        sources,
        kx,
        ky,
        photons=cfg.photons,
        read_noise=cfg.read_noise,
        seed=cfg.seed + 1,
        norm_percentiles=cfg.norm_percentiles,
        backgrounds=cfg.backgrounds,
        physics=physics_fn,
        physics_draws=cfg.physics_draws,
        progress=pool_progress if (physics_fn and progress) else None,
    )
    train_idx, val_idx = _split(data_desc["volumes"], cfg.val_fraction)
    data_desc.update(
        n_train=len(train_idx),
        n_val=len(val_idx),
        flips_allowed_axes=pool.flips,
        pool_build_s=round(time.perf_counter() - t0, 2),
    )
    state = _State(cfg)
    ckpt = out / CHECKPOINT_NAME
    if resume and ckpt.is_file():
        state.load(ckpt, cfg)
        log.info(f"resuming from step {state.step} ({ckpt})")
    xv, yv = sample_batch(
        pool,
        val_idx or train_idx,
        cfg.val_crops,
        cfg.patch,
        np.random.default_rng(cfg.seed + 2),
        fg_fraction=cfg.fg_fraction,
    )
    if "input" not in state.val_baseline:
        state.val_baseline = _metrics(xv[:, :1], yv)
        if physics_fn is not None:
            state.val_baseline[f"rl_{cfg.physics_iterations}"] = _metrics(xv[:, 1:2], yv)
    deadline = None if cfg.time_limit_min is None else t_start + 60.0 * cfg.time_limit_min
    _loop(state, cfg, pool, train_idx, (xv, yv), ckpt, max_steps, progress, deadline)
    if (
        max_steps is not None
        and state.step < cfg.steps
        and not state.stopped_early
        and not state.out_of_time
    ):
        return out
    net = state.model
    if state.best_state is not None:
        net.load_state_dict(state.best_state)
    config_json = _describe(cfg, state, kinfo, data_desc, kx, ky)
    save_model(out, net.cpu(), config_json, half=half_weights, physics_psf=ppsf)
    if not keep_checkpoint and ckpt.exists():
        ckpt.unlink()
    return out


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
    out.mkdir(parents=True, exist_ok=True)


def _kernels(cfg, psf, blurred_bead, ideal_bead, beads, bead_diameter_um, progress):
    given = [
        k
        for k, v in (("psf", psf), ("bead kernels", blurred_bead), ("beads", beads))
        if v is not None
    ]
    if len(given) != 1:
        raise user_error(
            "training needs exactly one kernel source",
            fix="pass a PSF, a bead stack (with its bead diameter), or o*/i* bead kernels",
        )
    if psf is not None:
        k = _unit(psf, "PSF")
        return k, None, {"mode": "psf", "psf_shape": list(k.shape)}
    if beads is not None:
        from ..psf import extract_psf

        res = extract_psf(
            np.asarray(beads, np.float32),
            voxel_size_um=cfg.voxel_size_um,
            bead_diameter_um=bead_diameter_um or 0.2,
            progress=progress,
        )
        blurred_bead, ideal_bead = res.blurred_bead, res.ideal_bead
        info = {
            "mode": "beads",
            "bead_diameter_um": bead_diameter_um,
            "n_beads_used": int(res.n_used),
            "n_beads_rejected": len(res.rejected),
            "psf_fwhm_um": [float(v) for v in res.fwhm_um],
        }
        if cfg.physics != "none":
            info["_extracted_psf"] = np.asarray(res.psf, np.float32)
        if cfg.bead_target == "psf":
            k = _unit(res.psf, "PSF extracted from the beads")
            info.update(mode="psf from beads", psf_shape=list(k.shape))
            return k, None, info
    else:
        if cfg.bead_target == "psf":
            raise user_error(
                "bead_target='psf' needs the bead stack (or the PSF itself), not o*/i*",
                fix="pass beads=STACK with bead_diameter_um, or psf=PSF",
            )
        info = {"mode": "beads"}
    if ideal_bead is None:
        raise user_error("bead mode needs both the blurred bead o* and the ideal bead i*")
    o, i = _unit(blurred_bead, "blurred bead"), _unit(ideal_bead, "ideal bead")
    info.update(blurred_bead_shape=list(o.shape), ideal_bead_shape=list(i.shape))
    return o, i, info


def _physics(cfg: TrainConfig, psf, physics_psf, kinfo: dict):
    """The RL_K PSF and function of the physics-aware variant (``None, None`` without it)."""
    if cfg.physics == "none":
        return None, None
    from ._physics import physics_channel

    k = physics_psf if physics_psf is not None else psf
    if k is None:
        k = kinfo.pop("_extracted_psf", None)
    if k is None:
        raise user_error(
            "the physics-aware variant needs the PSF for its RL channel",
            fix="pass physics_psf=PSF with the o*/i* bead kernels, or train from beads or a PSF",
        )
    k = _unit(k, "physics PSF")
    kinfo.pop("_extracted_psf", None)
    dev = str(resolve_device(cfg.device))
    # "auto" estimates the background on every pool realisation as it will on the user's data;
    # a number describes the user's data in counts, so the pool realisation's own known
    # background (in its intensity units) is used for it here

    def fn(vol, true_bg):
        bg = "auto" if cfg.physics_background == "auto" else true_bg
        level = log.level
        log.setLevel(max(level, logging.WARNING))  # not one "background=auto" line per realisation
        try:
            return physics_channel(
                vol,
                k,
                method=cfg.physics_method,
                iterations=cfg.physics_iterations,
                background=bg,
                device=dev,
            )
        finally:
            log.setLevel(level)

    return k, fn


def _unit(k, what: str) -> np.ndarray:
    k = np.asarray(k, np.float32)
    if k.ndim != 3 or not np.all(np.isfinite(k)) or k.sum() <= 0:
        raise user_error(f"the {what} must be a finite 3D array with a positive sum")
    return k / k.sum()


def _sources(cfg: TrainConfig, sharp) -> tuple[list[np.ndarray], dict]:
    vols: list[np.ndarray] = []
    names: list[str] = []
    for v, name in _sharp_volumes(sharp):
        vols.append(_fit(scale_to_unit(v), cfg.pool_shape))
        names.append(name)
    fams = list(cfg.phantoms)
    generator = "none"
    if fams:
        gen, generator = _phantom_generator()
        lo, hi = (float(v) for v in cfg.magnification)
        mags = np.exp(
            np.random.default_rng(cfg.seed + 7).uniform(np.log(lo), np.log(hi), cfg.n_phantoms)
        )
        for k in range(cfg.n_phantoms):
            fam = fams[k % len(fams)]
            feature = float(min(cfg.voxel_size_um[1:]) * mags[k])
            vols.append(scale_to_unit(gen(fam, cfg, cfg.seed * 1000 + k, feature)))
            names.append(
                f"phantom:{fam}:{cfg.seed * 1000 + k}"
                + (f":x{mags[k]:.2f}" if (lo, hi) != (1.0, 1.0) else "")
            )
    if not vols:
        raise user_error(
            "no sharp training volumes", fix="pass --sharp DIR and/or --phantoms NAMES"
        )
    # shuffle the source order (the 80/20 split is made per kind, see _split)
    order = np.random.default_rng(cfg.seed).permutation(len(vols))
    vols = [vols[i] for i in order]
    names = [names[i] for i in order]
    return vols, {
        "volumes": names,
        "phantom_generator": generator,
        "pool_shape": list(cfg.pool_shape),
        "magnification": list(cfg.magnification),
        "scaling": "each sharp volume: 0.5th percentile → 0, 99.9th percentile → 1",
    }


def _phantom_generator():
    try:
        from ..synth import phantom
    except ImportError:
        phantom = None
    if phantom is not None:

        def gen(fam, cfg, seed, feature_um=None):
            # "a+b" merges families in one volume
            return np.asarray(
                phantom(
                    fam.replace("+", ","),
                    shape=cfg.pool_shape,
                    voxel_size_um=cfg.voxel_size_um,
                    seed=seed,
                    feature_um=feature_um,
                ),
                np.float32,
            )

        return gen, "neurodecon.synth.phantom"

    def gen_private(fam, cfg, seed, feature_um=None):  # fixed sizes: no magnification
        try:
            return private_phantom([fam], cfg.pool_shape, np.random.default_rng(seed))
        except ValueError as exc:
            raise user_error(str(exc), fix="use --phantoms ellipsoids,tubes") from exc

    return gen_private, "neurodecon.learn private (ellipsoids, tubes)"


def _sharp_volumes(sharp):
    if sharp is None:
        return
    items = sharp if isinstance(sharp, list | tuple) else [sharp]
    from ..io import read

    for item in items:
        if isinstance(item, np.ndarray):
            yield item, "array"
            continue
        p = Path(item)
        files = (
            sorted(f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".npy"))
            if p.is_dir()
            else [p]
        )
        if not files:
            raise user_error(
                "no .tif/.tiff/.npy stacks in the folder",
                path=p,
                fix="put the sharp training stacks there",
            )
        for f in files:
            data = np.asarray(read(f).data, np.float32)
            while data.ndim > 3:
                data = data[0]
            if data.ndim != 3:
                raise user_error("sharp training stacks must be 3D", path=f)
            yield data, str(f)


def _fit(v: np.ndarray, shape) -> np.ndarray:
    """Pad (symmetric) a sharp volume that is smaller than the pool shape on some axis."""
    pad = [(0, max(0, s - n)) for n, s in zip(v.shape, shape, strict=True)]
    return np.pad(v, pad, mode="symmetric") if any(p[1] for p in pad) else v


def _split(names: list[str], val_fraction: float) -> tuple[list[int], list[int]]:
    """80/20 split stratified by source kind (phantom family, or the user's stacks).

    Each kind with at least two volumes gives ``round(val_fraction · n)`` of them (at least one)
    to validation, so validation covers every kind: a split that put only one family into
    validation picked the wrong weights (bench_learn.py, 2026-11-23).
    """
    n = len(names)
    if n < 2:
        return [0], []
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(_kind(name), []).append(i)
    val: list[int] = []
    for members in groups.values():
        if len(members) >= 2:
            k = min(len(members) - 1, max(1, int(round(val_fraction * len(members)))))
            val += members[-k:]
    if not val:  # single volumes of different kinds: fall back to the last ones
        val = list(range(n - min(n - 1, max(1, int(round(val_fraction * n)))), n))
    val_set = set(val)
    return [i for i in range(n) if i not in val_set], sorted(val)


def _kind(name: str) -> str:  # "phantom:FAMILY:SEED[:xMAG]" → FAMILY
    return name.split(":")[1] if name.startswith("phantom:") else "sharp"


class _State:
    """Network, optimiser, schedule, RNG and history: everything a checkpoint holds."""

    def __init__(self, cfg: TrainConfig) -> None:
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.net = build_network(cfg.net).to(self.device)
        # exponential moving average of the weights: what is validated and saved (0 = the raw weights)
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if cfg.ema_decay else None
        self.ema_decay = cfg.ema_decay
        self.opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
        )
        self.rng = np.random.default_rng(cfg.seed + 3)
        self.step = 0
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_state: dict | None = None
        self.val_baseline: dict = {}
        self.bad_vals = 0
        self.stopped_early = False
        self.out_of_time = False
        self.train_time_s = 0.0
        # gradient scaling is needed for fp16 only (bf16 has float32's exponent range)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=_cuda_amp_dtype(self.device) == torch.float16
        )

    def save(self, path: Path, cfg: TrainConfig) -> None:
        blob = {
            "step": self.step,
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": self.rng.bit_generator.state,
            "history": self.history,
            "best": self.best,
            "best_state": self.best_state,
            "val_baseline": self.val_baseline,
            "bad_vals": self.bad_vals,
            "train_time_s": self.train_time_s,
            "config": cfg.to_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)

    @property
    def model(self) -> torch.nn.Module:
        """The weights that are validated and saved: the moving average when it is on."""
        return self.ema if self.ema is not None else self.net

    def update_ema(self) -> None:
        """``ema ← d·ema + (1 − d)·w``, with ``d = min(decay, (1 + step) / (10 + step))`` so
        that the average does not lag behind the fast early changes.
        """
        if self.ema is None:
            return
        d = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)

    def load(self, path: Path, cfg: TrainConfig) -> None:
        blob = torch.load(path, map_location=self.device, weights_only=False)
        old = {k: v for k, v in blob["config"].items() if k not in TrainConfig.RUNTIME_ONLY}
        new = {k: v for k, v in cfg.to_dict().items() if k not in TrainConfig.RUNTIME_ONLY}
        if old != new:
            diff = sorted(k for k in new if old.get(k) != new[k])
            raise user_error(
                f"the checkpoint was made with different options ({', '.join(diff)})",
                path=path,
                fix="resume with the original options, or train into a new folder",
            )
        self.net.load_state_dict(blob["net"])
        if self.ema is not None:
            self.ema.load_state_dict(blob["ema"])
        self.opt.load_state_dict(blob["opt"])
        self.rng.bit_generator.state = blob["rng"]
        torch.set_rng_state(blob["torch_rng"])
        for k in (
            "step",
            "history",
            "best",
            "best_state",
            "val_baseline",
            "bad_vals",
            "train_time_s",
        ):
            setattr(self, k, blob[k])


def lr_factor(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_fraction`` — over the
    steps, or over the time budget when ``time_fraction`` (of it spent) runs ahead of them.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    t = max(t, time_fraction)
    return cfg.min_lr_fraction + (1 - cfg.min_lr_fraction) * 0.5 * (
        1 + math.cos(math.pi * min(t, 1.0))
    )


def _cuda_amp_dtype(device: torch.device):
    """Mixed-precision type on CUDA: bf16 where the GPU supports it, else fp16; None on the CPU.

    fp16 overflowed here: the paper-width network (16 base channels, lr 1e-3, no normalisation
    layers) trained on an H100 with fp16 autocast produced a NaN loss at step 149, where bf16's
    float32 exponent range leaves headroom.
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _precision_name(device: torch.device, cfg: TrainConfig) -> str:
    if device.type == "cuda":
        return (
            "bf16 autocast"
            if _cuda_amp_dtype(device) == torch.bfloat16
            else "fp16 autocast + gradient scaling"
        )
    return "bf16 autocast" if (cpu_has_fast_bf16() if cfg.bf16 is None else cfg.bf16) else "fp32"


def _autocast(device: torch.device, cfg: TrainConfig):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=_cuda_amp_dtype(device))
    enabled = cpu_has_fast_bf16() if cfg.bf16 is None else bool(cfg.bf16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16 or AMX): there bf16 autocast is ~1.8×
    faster; without it (e.g. AVX2-only CPUs) bf16 3D convolutions are over 100× slower.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _train_step(
    state: _State, cfg: TrainConfig, pool: Pool, idx: list[int], time_fraction: float = 0.0
) -> float:
    xb, yb = sample_batch(pool, idx, cfg.batch, cfg.patch, state.rng, fg_fraction=cfg.fg_fraction)
    x = torch.from_numpy(xb).to(state.device)
    y = torch.from_numpy(yb).to(state.device)
    for g in state.opt.param_groups:
        g["lr"] = cfg.lr * lr_factor(state.step, cfg, time_fraction)
    state.net.train()
    with _autocast(state.device, cfg):
        pred = state.net(x)
    loss = neurodecon_loss(
        pred,
        y,
        alpha=cfg.hessian_alpha,
        kind=cfg.loss,
        fourier_weight=cfg.fourier_weight,
        ssim_weight=cfg.ssim_weight,
    )
    if not torch.isfinite(loss):
        raise user_error(
            f"training diverged (loss {loss.item()}) at step {state.step}",
            fix="lower the learning rate (lr) or raise warmup_steps",
        )
    state.opt.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    state.scaler.unscale_(state.opt)
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(state.net.parameters(), cfg.grad_clip)
    state.scaler.step(state.opt)
    state.scaler.update()
    state.step += 1
    state.update_ema()
    return float(loss.item())


def _loop(state, cfg, pool, train_idx, val, ckpt, max_steps, progress, deadline=None) -> None:
    ema = None
    stop_at = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    t_loop = time.perf_counter()
    step_s = 0.0
    while state.step < stop_at and not state.stopped_early:
        t = time.perf_counter()
        frac = 0.0
        if deadline is not None:
            frac = (t - t_loop) / max(deadline - t_loop, 1e-9)
            if t + step_s > deadline:  # the next step would overrun the budget
                state.out_of_time = True
                log.info(f"time limit reached after {state.step} steps")
                if not state.history or state.history[-1]["step"] != state.step:
                    _validate(state, cfg, val, loss_ema=ema if ema is not None else float("nan"))
                state.save(ckpt, cfg)
                break
        loss = _train_step(state, cfg, pool, train_idx, frac)
        step_s = time.perf_counter() - t
        state.train_time_s += step_s
        ema = loss if ema is None else 0.95 * ema + 0.05 * loss
        msg = f"loss {ema:.4f}"
        if state.step % cfg.val_every == 0 or state.step == cfg.steps:
            _validate(state, cfg, val, loss_ema=ema)
            msg += f" val PSNR {state.history[-1]['psnr']:.2f}"
        if state.step % cfg.checkpoint_every == 0:
            state.save(ckpt, cfg)
        report(progress, state.step, cfg.steps, msg)


def _validate(state: _State, cfg: TrainConfig, val, *, loss_ema: float) -> None:
    xv, yv = val
    net = state.model
    net.eval()
    preds = []
    with torch.no_grad(), _autocast(state.device, cfg):
        for k in range(len(xv)):
            preds.append(
                net(torch.from_numpy(xv[k : k + 1]).to(state.device)).float().cpu().numpy()
            )
    m = _metrics(np.concatenate(preds), yv)
    entry = {
        "step": state.step,
        "loss_ema": round(loss_ema, 6),
        **m,
        "lr": state.opt.param_groups[0]["lr"],
        "train_time_s": round(state.train_time_s, 1),
    }
    state.history.append(entry)
    if state.best is None or m["psnr"] > state.best["psnr"]:
        state.best = entry
        state.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
        state.bad_vals = 0
    else:
        state.bad_vals += 1
        if cfg.early_stopping_patience and state.bad_vals >= cfg.early_stopping_patience:
            log.info(
                f"early stopping at step {state.step}: no validation gain in "
                f"{state.bad_vals} evaluations"
            )
            state.stopped_early = True


def _metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean PSNR/SSIM over validation crops after the least-squares affine fit of each
    prediction to its target (CARE's convention, as in ``neurodecon.metrics``), range of the target.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ps, ss = [], []
    for p, t in zip(pred[:, 0].astype(np.float64), target[:, 0].astype(np.float64), strict=True):
        a, b = np.polyfit(p.ravel(), t.ravel(), 1) if p.std() > 0 else (0.0, t.mean())
        p = (a * p + b).astype(np.float32)
        t = t.astype(np.float32)
        rng = float(t.max() - t.min()) or 1.0
        ps.append(peak_signal_noise_ratio(t, p, data_range=rng))
        ss.append(structural_similarity(t, p, data_range=rng))
    return {"psnr": round(float(np.mean(ps)), 4), "ssim": round(float(np.mean(ss)), 4)}


def _describe(cfg, state, kinfo, data_desc, kx, ky) -> dict:
    return {
        "description": "NeuroDecon residual 3D U-Net (Kalinin et al., §4.2.1), trained on "
        + (
            "X = i ⊛ o*, Y = i ⊛ i* (bead mode)"
            if kinfo["mode"] == "beads"
            else "X = i ⊛ PSF, Y = i (PSF mode)"
        ),
        "package_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "voxel_size_um": list(cfg.voxel_size_um),
        "network": cfg.net.to_dict(),
        "n_parameters": count_parameters(state.net),
        "normalization": {
            "method": "percentile-affine",
            "percentiles": list(cfg.norm_percentiles),
            "scope": "whole volume, each channel/time point separately; never per tile",
            "output": "prediction mapped back with the inverse affine (input intensity units)",
        },
        "kernel": kinfo,
        "training_data": data_desc,
        "noise": {
            "photons": list(cfg.photons),
            "read_noise_counts": cfg.read_noise,
            "background_counts": list(cfg.backgrounds),
            "model": "Poisson(x·photons + background) + N(0, read_noise), divided by photons",
        },
        "training": cfg.to_dict(),
        "steps_done": state.step,
        "stopped_early": state.stopped_early,
        "stopped_at_time_limit": state.out_of_time,
        "training_time_s": round(state.train_time_s, 1),
        "device": str(state.device),
        "precision": _precision_name(state.device, cfg),
        "validation": {
            "metric": "mean PSNR (dB) / SSIM over fixed validation crops, normalised "
            "units, after a least-squares affine fit to the target",
            "best": state.best,
            "input_baseline": state.val_baseline,
            "history": state.history,
        },
        "inference": {"halo": 16},
        **({"physics": physics_description(cfg)} if cfg.physics != "none" else {}),
    }


def physics_description(cfg: TrainConfig) -> dict:
    from ._physics import PSF_FILE

    return {
        "input": cfg.physics,
        "method": cfg.physics_method,
        "iterations": cfg.physics_iterations,
        "background": cfg.physics_background,
        "training_background": cfg.physics_background
        if cfg.physics_background == "auto"
        else "the known background of each training realisation",
        "psf_file": PSF_FILE,
        "channels": ["raw", f"rl_{cfg.physics_iterations}"],
        "residual": f"the network adds its output to the normalised rl_{cfg.physics_iterations} channel",
        "computed_on": "the whole volume (each channel/time point), before tiling",
        "training_realisations": f"{cfg.physics_draws} noisy draws per photon level per pool volume",
    }
