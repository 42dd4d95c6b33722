"""RLN with the authors' custom gradients vs autograd's analytic ones: which trains better?

The authors' code (``RLN code/RLN_single.py``) passes the numerator's gradient through the
division ``x / (FP + 0.001)`` unchanged and gives the divisor ``−m²`` instead of
``−m / (FP + 0.001)``, and the multiplication's first factor ``dy`` instead of ``b · dy``. This
trains RLN both ways with the same seeds, data and step count (a fixed number of steps, so the
result does not depend on the machine's load) and prints the best validation PSNR / SSIM.

    python benchmarks/rln_gradients.py --steps 300 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from neurodecon.learn import load_model, train
    from neurodecon.psf import make_psf

    torch.set_num_threads(args.threads)
    vs = (0.15, 0.05, 0.05)
    psf = make_psf("confocal", shape=(17, 25, 25), voxel_size_um=vs, na=1.4, wavelength_um=0.52)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for custom in (True, False):
            cfg = {
                "arch": "rln",
                "arch_options": {"custom_gradients": custom},
                "voxel_size_um": vs,
                "n_phantoms": 8,
                "pool_shape": (32, 64, 64),
                "patch": (16, 32, 32),
                "steps": args.steps,
                "val_every": max(args.steps // 6, 1),
                "checkpoint_every": args.steps,
                "photons": (100.0, 300.0, 1000.0),
                "seed": seed,
                "device": "cpu",
                "time_limit_min": 0,
            }
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                model = load_model(train(cfg, output_dir=Path(tmp) / "m", psf=psf))
            best = model.config["validation"]["best"]
            base = model.config["validation"]["input_baseline"]
            row = {
                "seed": seed,
                "custom_gradients": custom,
                "best_psnr": best["psnr"],
                "best_ssim": best["ssim"],
                "best_step": best["step"],
                "input_psnr": base["psnr"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    for custom in (True, False):
        sel = [r for r in rows if r["custom_gradients"] == custom]
        psnr = sum(r["best_psnr"] for r in sel) / len(sel)
        ssim = sum(r["best_ssim"] for r in sel) / len(sel)
        print(f"custom_gradients={custom}: mean best PSNR {psnr:.2f} dB, SSIM {ssim:.3f}")


if __name__ == "__main__":
    main()
