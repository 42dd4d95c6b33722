"""The training loop: AdamW with warm-up + cosine, weight averaging, validation, checkpoints."""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..errors import user_error
from ..progress import ProgressFn, report
from ._config import TrainConfig
from ._data import Pool, sample_batch
from ._loss import training_loss
from ._net import build_network
from ._precision import grad_scaler, place_network, precision_name, training_autocast

__all__ = ["TrainState", "lr_factor", "train_step", "run_loop", "validation_metrics"]

log = logging.getLogger("neurodecon")

#: What a checkpoint holds besides the network, optimiser, weight average and generators.
_RESUMED = ("step", "history", "best", "best_state", "val_baseline", "bad_vals", "train_time_s")


class TrainState:
    """Network, optimiser, schedule, RNG and history: everything a checkpoint holds.

    Creating it seeds torch with ``run.seed`` and builds the network on ``run.device``; batches
    are drawn from ``rng`` (seed ``run.seed + 3``).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        torch.manual_seed(cfg.run.seed)
        self.device = resolve_device(cfg.run.device)
        self.net = place_network(build_network(cfg.net), self.device)
        # exponential moving average of the weights: validated and saved (0 = the raw weights)
        o = cfg.optim
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if o.ema_decay else None
        self.ema_decay = o.ema_decay
        self.opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=o.lr,
            betas=o.betas,
            eps=o.adam_eps,
            weight_decay=o.weight_decay,
        )
        self.rng = np.random.default_rng(cfg.run.seed + 3)
        self.step = 0
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_state: dict | None = None
        self.val_baseline: dict[str, Any] = {}
        self.bad_vals = 0
        self.stopped_early = False
        self.out_of_time = False
        self.train_time_s = 0.0
        self.scaler = grad_scaler(self.device)

    @property
    def model(self) -> torch.nn.Module:
        """Return the weights that are validated and saved: the moving average when it is on."""
        return self.ema if self.ema is not None else self.net

    def update_ema(self) -> None:
        """Update ``ema ← d·ema + (1 − d)·w``, with ``d = min(decay, (1 + step) / (10 + step))``.

        The ramp keeps the average from lagging behind the fast early changes.
        """
        if self.ema is None:
            return
        d = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
            # buffers (batch-norm statistics of rln) follow the live network's
            for be, b in zip(self.ema.buffers(), self.net.buffers(), strict=True):
                be.copy_(b)

    def save(self, path: Path, cfg: TrainConfig) -> None:
        """Write a checkpoint atomically (a temporary file, then a rename)."""
        blob = {k: getattr(self, k) for k in _RESUMED}
        blob.update(
            net=self.net.state_dict(),
            opt=self.opt.state_dict(),
            ema=self.ema.state_dict() if self.ema is not None else None,
            rng=self.rng.bit_generator.state,
            config=cfg.to_dict(),
            torch_rng=torch.get_rng_state(),
        )
        tmp = path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)

    def load(self, path: Path, cfg: TrainConfig) -> None:
        """Continue from a checkpoint made with the same options (runtime-only ones aside)."""
        blob = torch.load(path, map_location=self.device, weights_only=False)
        old = TrainConfig.from_dict(blob["config"])  # nested, or the flat layout of before
        diff = cfg.differences(old, ignore=TrainConfig.RUNTIME_ONLY)
        if diff:
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
        for k in _RESUMED:
            setattr(self, k, blob[k])

    def summary(self, cfg: TrainConfig) -> dict[str, Any]:
        """Return how the run went, as recorded in ``config.json``."""
        return {
            "steps_done": self.step,
            "stopped_early": self.stopped_early,
            "stopped_at_time_limit": self.out_of_time,
            "training_time_s": round(self.train_time_s, 1),
            "device": str(self.device),
            "precision": precision_name(self.device, cfg.run.bf16),
            "validation": {
                "metric": "mean PSNR (dB) / SSIM over fixed validation crops, normalised "
                "units, after a least-squares affine fit to the target",
                "best": self.best,
                "input_baseline": self.val_baseline,
                "history": self.history,
            },
        }


def lr_factor(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Return the learning-rate factor: linear warm-up, then the ``optim.schedule``.

    ``cosine``: cosine decay to ``min_lr_fraction``; ``step``: halved after every quarter of
    the run (3D-RCAN); ``exponential``: ``0.95 ** (step / 600)`` (RLN, by steps only);
    ``constant``: 1 (DeBCR). The cosine and step decays run over the steps, or over the time
    budget when ``time_fraction`` (the part of it spent) runs ahead of them.

    Examples
    --------
    >>> cfg = TrainConfig.from_dict({"steps": 100, "warmup_steps": 10, "min_lr_fraction": 0.0})
    >>> lr_factor(4, cfg), lr_factor(10, cfg), round(lr_factor(55, cfg), 3), lr_factor(99, cfg, 1.0)
    (0.5, 1.0, 0.5, 0.0)
    >>> cfg = TrainConfig.from_dict({"steps": 100, "arch": "rcan"})
    >>> lr_factor(0, cfg), lr_factor(30, cfg), lr_factor(99, cfg)
    (1.0, 0.5, 0.125)
    """
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    s = step - o.warmup_steps
    kind = o.schedule.value
    if kind == "constant":
        return 1.0
    if kind == "exponential":
        return 0.95 ** (s / 600)
    t = max(s / max(1, cfg.run.steps - o.warmup_steps), time_fraction)
    if kind == "step":
        return 0.5 ** min(int(4 * t), 3)
    return o.min_lr_fraction + (1 - o.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def train_step(
    state: TrainState, cfg: TrainConfig, pool: Pool, idx: list[int], time_fraction: float = 0.0
) -> float:
    """Draw a batch, take one optimiser step and update the weight average; return the loss."""
    d = cfg.data
    xb, yb = sample_batch(pool, idx, d.batch, d.patch, state.rng, fg_fraction=d.fg_fraction)
    x = torch.from_numpy(xb).to(state.device)
    y = torch.from_numpy(yb).to(state.device)
    for g in state.opt.param_groups:
        g["lr"] = cfg.optim.lr * lr_factor(state.step, cfg, time_fraction)
    state.net.train()
    forward_train = getattr(state.net, "forward_train", None)
    with training_autocast(state.device, cfg.run.bf16):
        pred, extras = forward_train(x) if forward_train else (state.net(x), None)
    loss = training_loss(cfg.loss, pred, y, x, extras)
    if not torch.isfinite(loss):
        raise user_error(
            f"training diverged (loss {loss.item()}) at step {state.step}",
            fix="lower the learning rate (lr) or raise warmup_steps",
        )
    state.opt.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    state.scaler.unscale_(state.opt)
    if cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(state.net.parameters(), cfg.optim.grad_clip)
    state.scaler.step(state.opt)
    state.scaler.update()
    state.step += 1
    state.update_ema()
    return float(loss.item())


def run_loop(
    state: TrainState,
    cfg: TrainConfig,
    pool: Pool,
    train_idx: list[int],
    val: tuple[np.ndarray, np.ndarray],
    ckpt: Path,
    max_steps: int | None,
    progress: ProgressFn | None,
    deadline: float | None = None,
) -> None:
    """Train until ``run.steps`` (or ``max_steps``), early stopping or the ``deadline``.

    Validates every ``run.val_every`` steps and at the end, writes a checkpoint every
    ``run.checkpoint_every`` steps and when the time is up; ``deadline`` is a
    :func:`time.perf_counter` value (the schedule is stretched over the time left).
    """
    r = cfg.run
    ema = None
    stop_at = r.steps if max_steps is None else min(r.steps, max_steps)
    t_loop = time.perf_counter()
    step0, shown_total = state.step, stop_at
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
                    validate(state, cfg, val, loss_ema=ema if ema is not None else float("nan"))
                state.save(ckpt, cfg)
                break
        loss = train_step(state, cfg, pool, train_idx, frac)
        step_s = time.perf_counter() - t
        state.train_time_s += step_s
        ema = loss if ema is None else 0.95 * ema + 0.05 * loss
        msg = f"loss {ema:.4f}"
        if state.step % r.val_every == 0 or state.step == r.steps:
            validate(state, cfg, val, loss_ema=ema)
            msg += f" val PSNR {state.history[-1]['psnr']:.2f}"
        if state.step % r.checkpoint_every == 0:
            state.save(ckpt, cfg)
        if deadline is not None:  # the budget ends the run first: show the steps it allows
            shown_total = _projected_total(
                state.step, step0, t_loop, deadline, stop_at, shown_total
            )
        report(progress, state.step, shown_total, msg)


def _projected_total(
    step: int, step0: int, t_loop: float, deadline: float, cap: int, shown: int
) -> int:
    """Return the steps the time budget allows at the rate so far (``shown`` unless 10 % off).

    Keeping the shown total until the projection moves by more than 10 % keeps a progress bar's
    ETA steady (a new total starts a new phase of :class:`neurodecon.progress.TextProgress`).
    """
    if step - step0 < 3:
        return shown
    now = time.perf_counter()
    per_step = (now - t_loop) / (step - step0)
    projected = min(cap, step + int(max(deadline - now, 0.0) / per_step))
    return projected if abs(projected - shown) > 0.1 * shown else shown


def validate(
    state: TrainState, cfg: TrainConfig, val: tuple[np.ndarray, np.ndarray], *, loss_ema: float
) -> None:
    """Score the saved weights on the fixed validation crops; keep the best; early stopping."""
    xv, yv = val
    net = state.model
    net.eval()
    preds = []
    with torch.no_grad(), training_autocast(state.device, cfg.run.bf16):
        for k in range(len(xv)):
            x = torch.from_numpy(xv[k : k + 1]).to(state.device)
            preds.append(net(x).float().cpu().numpy())
    m = validation_metrics(np.concatenate(preds), yv)
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
        patience = cfg.run.early_stopping_patience
        if patience and state.bad_vals >= patience:
            log.info(
                f"early stopping at step {state.step}: no validation gain in "
                f"{state.bad_vals} evaluations"
            )
            state.stopped_early = True


def validation_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Return mean PSNR/SSIM of ``(B, 1, Z, Y, X)`` crops after an affine fit to each target.

    The least-squares fit of each prediction to its target is CARE's convention, as in
    :mod:`neurodecon.metrics`; the data range is the target's.
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
