"""Spread of ``iterations="auto"`` over thinning seeds on the small blob phantom of the tests.

For RL and rl-accel: the oracle-best iteration (PSNR against the truth, up to 400 / 120), and for
six binomial-thinning seeds the half-data best ``k½`` (plain RL's for both: rl-accel is
cross-validated with RL), the chosen count and the PSNR there.

    .venv/bin/python benchmarks/auto_seed_spread.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_classical import auto_stopping_case  # noqa: E402

from neurodecon.classical import Deconvolver, deconvolve  # noqa: E402
from neurodecon.classical.stopping import auto_iterations  # noqa: E402
from neurodecon.metrics import psnr  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    psf, truth, y = auto_stopping_case()
    for method, cap in (("rl", 400), ("rl-accel", 120)):
        curve: list[float] = []
        deconvolve(
            y,
            psf,
            method,
            iterations=cap,
            background=5.0,
            device="cpu",
            callback=lambda k, x, c=curve: c.append(psnr(x, truth)),
        )
        dec = Deconvolver(psf, y.shape, method=method, device="cpu")
        best = int(np.argmax(curve)) + 1
        print(f"{method}: oracle {best} iterations, {max(curve):.2f} dB")
        losses = []
        for seed in range(6):
            k, k_half, _ = auto_iterations(dec, y, 5.0, seed=seed, return_curve=True)
            at = curve[min(k, cap) - 1]
            losses.append(max(curve) - at)
            print(f"  seed {seed}: k½ {k_half}, auto {k}, {at:.2f} dB (loss {max(curve) - at:.2f})")
        print(f"  mean loss {np.mean(losses):.2f} dB, worst {max(losses):.2f} dB")


if __name__ == "__main__":
    main()
