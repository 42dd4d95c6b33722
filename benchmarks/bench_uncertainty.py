"""What ``deconvolve --model … --uncertainty`` (the flip spread) costs, for every architecture.

    .venv/bin/python benchmarks/bench_uncertainty.py [--shape 32 256 256] [--threads 2]
    .venv/bin/python benchmarks/bench_uncertainty.py --models DIR [DIR …]   # trained folders

``predict_with_spread`` runs ``predict`` once per flip the model is symmetric for (y and x: 4
passes) and keeps the mean and the standard deviation per voxel. Measured here against one
``predict`` of the same volume (best of ``--repeats`` after one warm-up run,
``bench_classical.time_it``), CPU, ``--threads``:
the shipped default U-Net (its RL input included) and, unless ``--models`` names trained model
folders, RLN, 3D-RCAN and DeBCR built at their documented CPU sizes with untrained weights (the
cost of a pass does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import time_it  # noqa: E402 - best of the repeats after one warm-up


def models(paths: list[str]) -> dict:
    """Name → Model: the shipped U-Net, then ``paths`` or untrained networks of each arch."""
    from neurodecon.learn import DeBCRConfig, Model, RCANConfig, build_network, load_model

    out = {"unet (shipped default)": load_model("default")}
    if paths:
        for p in paths:
            m = load_model(p)
            out[f"{m.arch} ({p})"] = m
        return out
    vox = list(out["unet (shipped default)"].config["voxel_size_um"])
    sizes = {"rln": {}, "rcan": RCANConfig.cpu(), "debcr": DeBCRConfig.cpu()}
    for arch, options in sizes.items():
        net = build_network({"arch": arch, "arch_options": options}).eval()
        cfg = {"voxel_size_um": vox, "normalization": {"percentiles": [1.0, 99.8]}, "arch": arch}
        out[f"{arch} (CPU size, untrained)"] = Model(net, cfg)
    return out


def main() -> None:
    import torch

    from neurodecon.learn import augmentations, predict, predict_with_spread
    from neurodecon.report import demo_data
    from neurodecon.synth import forward_model, phantom

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(32, 256, 256))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=[], help="trained model folders")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = demo_data()
    vox = d["voxel_size_um"]
    truth = phantom(["sponge", "puncta"], shape=tuple(args.shape), voxel_size_um=vox, seed=1)
    raw = forward_model(truth, d["psf"], seed=2, photons=300.0, background=5.0, read_noise=1.0)
    print(f"{'×'.join(map(str, args.shape))} voxels, {args.threads} threads, CPU\n")
    print("| model | flips | predict s | with spread s | ratio |\n|---|---|---|---|---|")
    for name, model in models(args.models).items():
        kw = {"voxel_size_um": vox, "device": "cpu", "check": False}
        one, _ = time_it(lambda m=model, k=kw: predict(m, raw, **k), args.repeats)
        spread, _ = time_it(lambda m=model, k=kw: predict_with_spread(m, raw, **k), args.repeats)
        print(
            f"| {name} | {len(augmentations(model))} | {one:.2f} | {spread:.2f} | "
            f"{spread / one:.2f}× |",
            flush=True,
        )


if __name__ == "__main__":
    main()
