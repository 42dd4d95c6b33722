"""Train the model shipped in ``src/neurodecon/models/default`` (reproducible: fixed seeds).

Microscope (documented in docs/learn.md and recorded in the model's config.json): a theoretical
confocal PSF, NA 1.4 oil (n 1.515), emission 0.52 µm, excitation 0.488 µm, pinhole 1 AU,
voxel 0.1 × 0.05 × 0.05 µm (z, y, x) — the microscope `neurodecon demo` simulates.
Training data: synthetic phantoms of nine families, PSF mode (X = i ⊛ PSF + noise, Y = i), the
default recipe of `neurodecon train`.

    # ~20 min on 2 idle cores:
    .venv/bin/python scripts/train_default_model.py --threads 2
    .venv/bin/python scripts/train_default_model.py --resume   # continue after an interruption
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

MICROSCOPE = {
    "model": "confocal",
    "na": 1.4,
    "wavelength_um": 0.52,
    "excitation_wavelength_um": 0.488,
    "immersion_index": 1.515,
    "pinhole_au": 1.0,
}
VOXEL_SIZE_UM = (0.1, 0.05, 0.05)
PSF_SHAPE = (33, 49, 49)
#: The nested layout of neurodecon.learn.TrainConfig (config.json["training"]): everything not set
#: here is the `neurodecon train` default (PSF mode, accelerated RL as a second input with its
#: iterations chosen at training, MAE + Hessian + 0.2 · (1 − SSIM), base width 8, lr 1e-3), so the
#: shipped model is what a user's default training gives for this microscope. Fixed steps instead
#: of the default 20-minute budget, so the model does not depend on the machine's speed.
CONFIG = {
    "data": {
        "voxel_size_um": VOXEL_SIZE_UM,
        "phantoms": (
            "ellipsoids",
            "tubes",
            "sponge",
            "dendrites",
            "clusters",
            "er",
            "filaments",
            "sheets",
            "puncta",
        ),
        "n_phantoms": 12,
    },
    # the demo's camera (no beads to calibrate it on): photons at intensity 1 of the sample
    "noise": {
        "photons": (100.0, 300.0, 1000.0),
        "backgrounds": (0.0, 2.0, 5.0, 10.0),
        "read_noise": 1.0,
    },
    "run": {
        "steps": 1800,
        "time_limit_min": None,
        "val_every": 100,
        "checkpoint_every": 100,
        "seed": 0,
    },  # fmt: skip
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=None, help="model folder (default: the package's)")
    ap.add_argument("--steps", type=int, default=CONFIG["run"]["steps"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    from neurodecon.learn import default_model_path, train
    from neurodecon.progress import console_progress

    out = Path(args.output) if args.output else default_model_path()
    if out.exists() and not args.resume:
        shutil.rmtree(out)
    t0 = time.perf_counter()
    with console_progress("Training default model", enabled=True) as cb:
        train(
            {**CONFIG, "run": {**CONFIG["run"], "steps": args.steps, "threads": args.threads}},
            output_dir=out,
            psf_model=MICROSCOPE["model"],  # through neurodecon.psf.resolve_psf, as the CLI's
            optics={k: v for k, v in MICROSCOPE.items() if k != "model"},
            psf_shape=PSF_SHAPE,
            resume=args.resume,
            keep_checkpoint=False,
            kernel_info={"trained_by": "scripts/train_default_model.py"},
            progress=cb,
        )
    print(f"wrote {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
