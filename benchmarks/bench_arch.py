"""The four networks side by side: same data, same wall-clock budget, same scoring.

On the learned issue's microscope matrix (``benchmarks/microscopes.py``; the pieces of
``bench_learn_matrix.py`` are imported, not copied): for each microscope a bead stack and test
volumes of structure families the training never sees; for each architecture, as a user would,

    neurodecon train --beads beads.tif --bead-diameter 0.1 --arch ARCH --time-limit MIN -o DIR
    neurodecon deconvolve sample.tif --model DIR -o net.tif

scored against the truth (PSNR / SSIM after the affine intensity fit; lateral decorrelation
resolution), with the parameter count, training steps reached and inference voxels/s (Python
API, after a warm-up), beside ``rl-accel --iterations auto`` and (unless ``--no-oracle``) RL and
RL-TV stopped at their best iteration chosen with the truth. ``--config cpu`` trains the
documented small CPU configurations of 3D-RCAN and DeBCR (``RCANConfig.cpu()``,
``DeBCRConfig.cpu()``; RLN's default is small already), ``--config paper`` their paper sizes.

    python benchmarks/bench_arch.py --microscope all --budget-min 20 --out benchmarks/_out/arch
    python benchmarks/bench_arch.py --microscope confocal-sa --budget-min 3 --config cpu \\
        --no-oracle --out benchmarks/_out/arch_short
    python benchmarks/bench_arch.py --report benchmarks/_out/arch    # tables only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_learn_matrix as matrix  # noqa: E402  (the matrix's runner, scoring and oracle)
import microscopes as mic  # noqa: E402

ARCHS = ("unet", "rln", "rcan", "debcr")


def arch_options(arch: str, config: str) -> list[str]:
    """Return the ``--arch-options`` of ``arch`` for ``--config cpu`` (none for ``paper``)."""
    from neurodecon.learn import DeBCRConfig, RCANConfig

    small = {"rcan": RCANConfig.cpu(), "debcr": DeBCRConfig.cpu()}
    if config != "cpu" or arch not in small:
        return []
    return ["--arch-options", ",".join(f"{k}={v}" for k, v in small[arch].items())]


def voxels_per_s(model_dir: Path, image: np.ndarray, vox) -> float:
    """Inference speed of the model through the Python API (one warm-up, then one timed run)."""
    from neurodecon.learn import load_model, predict

    model = load_model(model_dir)
    predict(model, image[:16, :64, :64], voxel_size_um=vox, device="cpu", check=False)
    t0 = time.perf_counter()
    predict(model, image, voxel_size_um=vox, device="cpu", check=False)
    return image.size / (time.perf_counter() - t0)


def one_microscope(name: str, out: Path, args, env: dict) -> dict:
    import neurodecon as nd
    from neurodecon.psf import resolve_psf

    m = mic.MICROSCOPES[name]
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    vox = m.voxel_size_um
    beads = d / "beads.tif"
    nd.write(beads, mic.bead_stack(name, seed=args.seed), voxel_size_um=vox, overwrite=True)
    bead_args = ["--beads", beads, "--bead-diameter", matrix.BEAD_DIAMETER]
    samples = {}
    for i, family in enumerate(args.families):
        truth, image = mic.sample(name, family, seed=args.seed + 10 * (i + 1))
        nd.write(d / f"{family}.tif", image, voxel_size_um=vox, overwrite=True)
        samples[family] = (truth, image)
    result: dict = {
        "microscope": m.name,
        "notes": m.notes,
        "budget_min": args.budget_min,
        "config": args.config,
        "threads": args.threads,
        "archs": {},
        "families": {f: {"raw": matrix.score(im, t, vox)} for f, (t, im) in samples.items()},
    }
    for arch in args.archs:
        model = d / f"model_{arch}"
        train = [*matrix.CLI, "train", *bead_args, "--arch", arch,
                 *arch_options(arch, args.config), "--time-limit", str(args.budget_min),
                 "--threads", str(args.threads), "--device", "cpu", "--seed", str(args.seed),
                 "-o", model, "--overwrite"]  # fmt: skip
        seconds = matrix.run(train, env)
        card = json.loads((model / "config.json").read_text())
        best = (card.get("validation") or {}).get("best") or {}
        first = samples[args.families[0]][1]
        result["archs"][arch] = {
            "train_command": [str(a) for a in train[3:]],
            "train_seconds": seconds,
            "n_parameters": card["n_parameters"],
            "steps_done": card["steps_done"],
            "validation_psnr": best.get("psnr"),
            "voxels_per_s": voxels_per_s(model, first, vox),
        }
        for family in args.families:
            truth, _ = samples[family]
            pred = d / f"{family}_{arch}.tif"
            t = matrix.run([*matrix.CLI, "deconvolve", d / f"{family}.tif", "--model", model,
                            "-o", pred, "--overwrite", "--device", "cpu"], env)  # fmt: skip
            row = {**matrix.score(nd.read(pred).data, truth, vox), "seconds": t}
            result["families"][family][arch] = row
    for family in args.families:
        truth, image = samples[family]
        pred = d / f"{family}_rlaccel.tif"
        t = matrix.run([*matrix.CLI, "deconvolve", d / f"{family}.tif", *bead_args, "--method",
                        "rl-accel", "--iterations", "auto", "--background", "auto", "-o", pred,
                        "--overwrite", "--device", "cpu"], env)  # fmt: skip
        row = result["families"][family]
        row["rl-accel auto"] = {**matrix.score(nd.read(pred).data, truth, vox), "seconds": t}
        if not args.no_oracle:
            psf = resolve_psf(image_shape=image.shape, image_voxel_size_um=vox, beads=beads,
                              bead_diameter_um=matrix.BEAD_DIAMETER).psf  # fmt: skip
            for method in ("rl", "rltv"):
                row[f"{method} oracle"] = matrix.oracle(image, psf, truth, method)
    return result


def table(result: dict) -> str:
    fams = list(result["families"])
    archs = list(result["archs"])
    methods = ["raw", "rl oracle", "rltv oracle", "rl-accel auto", *archs]
    methods = [x for x in methods if x in result["families"][fams[0]]]
    lines = [
        f"#### {result['microscope']} ({result['notes']})",
        "",
        f"budget {result['budget_min']} min per network (whole train command), "
        f"{result['threads']} threads, configuration {result['config']}",
        "",
        "| method | " + " | ".join(f"{f} PSNR / SSIM" for f in fams)
        + " | mean PSNR / SSIM | decorr. xy (µm) | parameters | steps | voxels/s |",
        "| --- " * (len(fams) + 6) + "|",
    ]  # fmt: skip
    for meth in methods:
        rows = [result["families"][f][meth] for f in fams]
        cells = [f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in rows]
        ps, ss = np.mean([r["psnr"] for r in rows]), np.mean([r["ssim"] for r in rows])
        dc = np.nanmean([r.get("decorr_xy_um", np.nan) for r in rows])
        a = result["archs"].get(meth, {})
        extra = (
            f"{a['n_parameters']:,} | {a['steps_done']} | {a['voxels_per_s']:.3g}"
            if a
            else "– | – | –"
        )
        lines.append(f"| {meth} | " + " | ".join(cells) + f" | {ps:.2f} / {ss:.3f} | {dc:.3f} | "
                     + extra + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--microscope", default="all", help=f"one of {list(mic.MICROSCOPES)} or all")
    ap.add_argument("--out", default=str(matrix.REPO / "benchmarks" / "_out" / "arch"))
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--families", default=",".join(matrix.TEST_FAMILIES))
    ap.add_argument("--budget-min", type=float, default=20.0, help="train --time-limit (min)")
    ap.add_argument("--config", choices=("paper", "cpu"), default="paper")
    ap.add_argument("--no-oracle", action="store_true", help="skip the RL/RL-TV oracles")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", default=None, help="print the tables of an earlier --out")
    args = ap.parse_args()
    if args.report:
        for f in sorted(Path(args.report).glob("*/results.json")):
            print(table(json.loads(f.read_text())))
        return
    args.archs = [a for a in args.archs.split(",") if a]
    args.families = [f for f in args.families.split(",") if f]
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    out = Path(args.out)
    names = list(mic.MICROSCOPES) if args.microscope == "all" else [args.microscope]
    for name in names:
        result = one_microscope(name, out, args, env)
        (out / name / "results.json").write_text(json.dumps(result, indent=1, default=str))
        print(table(result), flush=True)


if __name__ == "__main__":
    main()
