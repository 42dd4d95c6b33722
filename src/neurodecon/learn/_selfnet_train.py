"""Self-Net's training: both stages in one loop, as the authors' code runs them.

Each step (authors' ``Train_self_net.py``): the generator ``degrade`` maps degraded lateral
patches to synthetic axial ones and ``restore`` maps axial patches back, trained with LSGAN
losses against two PatchGAN discriminators plus the cycle loss (stage 1); then the deblurring
network learns ``degrade(xy_lr) → xy`` with the restoration loss (stage 2), whose loss also
feeds back into ``degrade`` after the first tenth of the steps. The discriminators are updated
every second step. Checkpoints hold every network, optimiser, the step, the elapsed time and
the random state, so an interrupted training resumes where it stopped.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import user_error
from ..progress import ProgressFn, report
from ._precision import place_network
from ._selfnet_config import SelfNetConfig
from ._selfnet_data import SelfNetData
from ._selfnet_nets import Generator, PatchDiscriminator, lsgan_loss, restoration_loss

__all__ = ["SelfNetTraining", "train_selfnet", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
_BETAS = (0.5, 0.999)


@dataclass
class SelfNetTraining:
    """The five networks, their three optimisers and where the training stands."""

    config: SelfNetConfig
    device: torch.device
    degrade: Generator = field(init=False)
    restore: Generator = field(init=False)
    judge_axial: PatchDiscriminator = field(init=False)
    judge_lateral: PatchDiscriminator = field(init=False)
    deblur: Generator = field(init=False)
    deblur_average: Generator = field(init=False)
    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        c, dev = self.config, self.device
        self.degrade = place_network(Generator(c.channels, c.blocks), dev)
        self.restore = place_network(Generator(c.channels, c.blocks), dev)
        self.deblur = place_network(Generator(c.channels, c.blocks), dev)
        self.deblur_average = place_network(Generator(c.channels, c.blocks), dev)
        self.deblur_average.load_state_dict(self.deblur.state_dict())
        self.deblur_average.requires_grad_(False)
        self.judge_axial = place_network(PatchDiscriminator(c.disc_channels), dev)
        self.judge_lateral = place_network(PatchDiscriminator(c.disc_channels), dev)
        gens = itertools.chain(self.degrade.parameters(), self.restore.parameters())
        judges = itertools.chain(self.judge_axial.parameters(), self.judge_lateral.parameters())
        self.opt_g = torch.optim.Adam(gens, lr=c.lr, betas=_BETAS)
        self.opt_d = torch.optim.Adam(judges, lr=c.lr, betas=_BETAS)
        self.opt_deblur = torch.optim.Adam(self.deblur.parameters(), lr=c.lr, betas=_BETAS)

    def _modules(self) -> dict[str, Any]:
        return {
            "degrade": self.degrade,
            "restore": self.restore,
            "deblur": self.deblur,
            "deblur_average": self.deblur_average,
            "judge_axial": self.judge_axial,
            "judge_lateral": self.judge_lateral,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
            "opt_deblur": self.opt_deblur,
        }

    def save(self, path: Path, rng: np.random.Generator) -> None:
        """Write a checkpoint atomically (temporary file, then rename)."""
        state = {name: m.state_dict() for name, m in self._modules().items()}
        state.update(
            config=self.config.to_dict(),
            step=self.step,
            elapsed_s=self.elapsed_s,
            history=self.history,
            rng=rng.bit_generator.state,
            torch_rng=torch.get_rng_state(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load(self, path: Path, rng: np.random.Generator) -> None:
        """Continue from a checkpoint written by :meth:`save` with the same configuration."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved, now = dict(state["config"]), self.config.to_dict()
        saved.pop("steps"), now.pop("steps")  # more (or fewer) steps may be asked for
        if saved != now:
            raise user_error(
                "the checkpoint was written with another Self-Net configuration",
                path=path,
                fix="resume with the same options (or preset), or start again without --resume",
            )
        for name, module in self._modules().items():
            module.load_state_dict(state[name])
        self.step, self.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        self.history = list(state["history"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])

    @torch.no_grad()
    def update_average(self) -> None:
        """Move the exponential moving average of the deblurring weights one step on.

        The decay ramps up as ``(1 + step) / (10 + step)`` to ``config.average_decay``, so that
        a short training (a time limit, a test) is not averaged with the untrained start.
        """
        decay = min(self.config.average_decay, (1.0 + self.step) / (10.0 + self.step))
        for avg, p in zip(self.deblur_average.parameters(), self.deblur.parameters(), strict=True):
            avg.lerp_(p, 1.0 - decay)

    def result(self) -> Generator:
        """Return the deblurring network to restore with: its weights' moving average if kept."""
        return (self.deblur_average if self.config.average_decay > 0 else self.deblur).eval()

    def set_lr(self) -> None:
        """Halve the learning rate at 50 % and 75 % of the steps.

        The authors halve it every 15 of their 60 epochs.
        """
        frac = self.step / self.config.steps
        lr = self.config.lr * (0.5 ** int(frac >= 0.5)) * (0.5 ** int(frac >= 0.75))
        for opt in (self.opt_g, self.opt_d, self.opt_deblur):
            for group in opt.param_groups:
                group["lr"] = lr


def _requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def train_step(t: SelfNetTraining, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One step of both stages; returns the losses."""
    c = t.config
    a, b, sharp = batch["xy_lr"], batch["axial"], batch["xy"]
    feedback = c.feedback_weight if t.step >= c.steps // 10 else 0.0
    fake_b, fake_a = t.degrade(a), t.restore(b)
    _requires_grad((t.judge_axial, t.judge_lateral, t.deblur), False)
    gan = lsgan_loss(t.judge_axial(fake_b), True) + lsgan_loss(t.judge_lateral(fake_a), True)
    cycle = restoration_loss(t.restore(fake_b), a, c.ssim_weight) + restoration_loss(
        t.degrade(fake_a), b, c.ssim_weight
    )
    loss_g = c.gan_weight * gan + cycle
    if feedback > 0:
        loss_g = loss_g + feedback * restoration_loss(t.deblur(fake_b), sharp, c.ssim_weight)
    t.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    t.opt_g.step()
    out = {"gan": gan.item(), "cycle": cycle.item()}
    if t.step % 2 == 1:
        _requires_grad((t.judge_axial, t.judge_lateral), True)
        real = lsgan_loss(t.judge_axial(b), True) + lsgan_loss(t.judge_lateral(a), True)
        fake = lsgan_loss(t.judge_axial(fake_b.detach()), False) + lsgan_loss(
            t.judge_lateral(fake_a.detach()), False
        )
        loss_d = 0.5 * c.gan_weight * (real + fake)
        t.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        t.opt_d.step()
        out["disc"] = loss_d.item()
    _requires_grad((t.deblur,), True)
    loss_deblur = restoration_loss(t.deblur(fake_b.detach()), sharp, c.ssim_weight)
    t.opt_deblur.zero_grad(set_to_none=True)
    loss_deblur.backward()
    t.opt_deblur.step()
    t.update_average()
    out["deblur"] = loss_deblur.item()
    return out


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v[:, None]).to(device) for k, v in batch.items()}


def train_selfnet(
    data: SelfNetData,
    config: SelfNetConfig,
    *,
    device: torch.device,
    checkpoint: Path | None = None,
    resume: bool = False,
    time_limit_s: float | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SelfNetTraining:
    """Train until ``config.steps`` or ``time_limit_s`` (of this call) is reached.

    With ``checkpoint``, a checkpoint is written every ``config.checkpoint_s`` seconds, at the
    end, and when the training is interrupted (cancelled, Ctrl-C); ``resume`` continues from it.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t = SelfNetTraining(config, device)
    if resume:
        if checkpoint is None or not checkpoint.is_file():
            raise user_error(
                "no checkpoint to resume from", path=checkpoint, fix="train without --resume"
            )
        t.load(checkpoint, rng)
    try:
        _loop(t, data, rng, checkpoint, time_limit_s, progress)
    except BaseException:
        if checkpoint is not None and t.step > 0:
            t.save(checkpoint, rng)  # an interrupted training resumes from its last step
        raise
    if checkpoint is not None:
        t.save(checkpoint, rng)
    return t


def _loop(
    t: SelfNetTraining,
    data: SelfNetData,
    rng: np.random.Generator,
    checkpoint: Path | None,
    time_limit_s: float | None,
    progress: ProgressFn | None,
) -> None:
    config, device = t.config, t.device
    start, last_save, running = time.perf_counter(), time.perf_counter(), []
    base_elapsed = t.elapsed_s
    while t.step < config.steps:
        if time_limit_s is not None and time.perf_counter() - start >= time_limit_s:
            break
        t.set_lr()
        batch = data.sample(rng, config.batch, config.patch, rotate=config.rotate)
        losses = train_step(t, _to_device(batch, device))
        t.step += 1
        running.append(losses["deblur"])
        if len(running) == 50 or t.step == config.steps:
            t.history.append({"step": t.step, "deblur": float(np.mean(running))})
            running = []
        t.elapsed_s = base_elapsed + time.perf_counter() - start
        if checkpoint is not None and time.perf_counter() - last_save >= config.checkpoint_s:
            t.save(checkpoint, rng)
            last_save = time.perf_counter()
        report(progress, t.step, config.steps, f"deblur loss {losses['deblur']:.4f}")
