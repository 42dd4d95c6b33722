"""Memory layout of the networks on the CPU: PyTorch's default against ``place_network``'s.

For each network the package trains (the 3D U-Net, RLN, 3D-RCAN and DeBCR at their CPU sizes,
and Self-Net's 2D generator at the ``cpu`` preset's size): one training step (forward,
backward, Adam) on the default training batch, and one inference call, timed best of
``--repeats`` after a warm-up, with the weights in PyTorch's default layout and in the layout
:func:`neurodecon.learn.place_network` chooses (channels last on the CPU). The outputs of the
two layouts are compared too (largest difference relative to the output's range).

    OMP_NUM_THREADS=2 python benchmarks/bench_layout.py --threads 2 --out benchmarks/_out/layout
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_layout.py --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import time_it  # noqa: E402 - (best, median) of the repeats after a warm-up


def networks() -> dict:
    """Name → (network, training batch shape, inference input shape)."""
    from neurodecon.learn import (
        SELFNET_PRESETS,
        DeBCRConfig,
        RCANConfig,
        SelfNetGenerator,
        build_network,
    )

    c = SELFNET_PRESETS["cpu"]
    return {
        "unet (default)": (build_network(), (2, 1, 32, 64, 64), (1, 1, 64, 128, 128)),
        "rln (default)": (
            build_network({"arch": "rln"}),
            (2, 1, 32, 64, 64),
            (1, 1, 64, 128, 128),
        ),
        "rcan (cpu)": (
            build_network({"arch": "rcan", "arch_options": RCANConfig.cpu()}),
            (2, 1, 32, 64, 64),
            (1, 1, 64, 128, 128),
        ),
        "debcr (cpu)": (
            build_network({"arch": "debcr", "arch_options": DeBCRConfig.cpu()}),
            (2, 1, 32, 64, 64),
            (1, 1, 64, 128, 128),
        ),
        f"selfnet generator ({c.channels} ch, {c.blocks} blocks)": (
            SelfNetGenerator(c.channels, c.blocks),
            (c.batch, 1, c.patch, c.patch),
            (8, 1, 190, 512),
        ),
    }


def measure(net, train_shape, infer_shape, repeats: int) -> dict:
    """Training-step and inference seconds in both layouts, and the outputs' difference."""
    import torch

    from neurodecon.learn import place_network

    torch.manual_seed(0)
    channels = getattr(net, "in_channels", 1)  # the physics-aware U-Net takes two
    x_train = torch.rand((train_shape[0], channels, *train_shape[2:]))
    x_infer = torch.rand((infer_shape[0], channels, *infer_shape[2:]))
    rec: dict = {}
    outputs = {}
    for layout in ("default", "placed"):
        n = copy.deepcopy(net)
        n = place_network(n, torch.device("cpu")) if layout == "placed" else n
        opt = torch.optim.Adam(n.parameters(), lr=1e-4)

        def step(n=n, opt=opt):
            n.train()
            loss = (n(x_train)[:, :1] - x_train[:, :1]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        rec[f"train_{layout}_s"] = time_it(step, repeats)[0]  # best of the repeats
        n.eval()
        with torch.no_grad():
            rec[f"infer_{layout}_s"] = time_it(lambda n=n: n(x_infer), repeats)[0]
            outputs[layout] = n(x_infer).float()
        rec.setdefault("parameters", sum(p.numel() for p in n.parameters()))
    # both copies took the same optimiser steps from the same start: compare their outputs
    a, b = outputs["default"], outputs["placed"]
    rec["max_rel_diff"] = float((a - b).abs().max() / max(float(a.max() - a.min()), 1e-12))
    rec["train_speedup"] = rec["train_default_s"] / rec["train_placed_s"]
    rec["infer_speedup"] = rec["infer_default_s"] / rec["infer_placed_s"]
    return rec


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, (net, train_shape, infer_shape) in networks().items():
        rec = {"network": name, "threads": args.threads, "train_batch": list(train_shape),
               "infer_input": list(infer_shape), **measure(net, train_shape, infer_shape,
                                                            args.repeats)}  # fmt: skip
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    lines = [
        "| network | parameters | training step: default → placed (s) | speed-up | inference: "
        "default → placed (s) | speed-up | outputs differ by |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['parameters']:,} | {r['train_default_s']:.3f} → "
            f"{r['train_placed_s']:.3f} | {r['train_speedup']:.2f}× | {r['infer_default_s']:.3f} "
            f"→ {r['infer_placed_s']:.3f} | {r['infer_speedup']:.2f}× | {r['max_rel_diff']:.1e} |"
        )
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"layout_{args.threads}t.json").write_text(json.dumps(rows, indent=1))
        (args.out / f"layout_{args.threads}t.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
