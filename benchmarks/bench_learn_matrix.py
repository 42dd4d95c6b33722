"""Learned deconvolution with the default command, on microscopes the project never trained for.

For each simulated microscope of ``benchmarks/microscopes.py`` (widefield NA 1.3 oil; confocal
NA 1.4 oil with 0.35 waves of spherical aberration; low-light confocal NA 1.2 water; camera
offset 100 and read noise 2 e⁻ each): write a dense bead stack and test volumes of structure
families the training does not use, then, as a user would,

    neurodecon train --beads beads.tif --bead-diameter 0.1 -o model     (+ --extra args)
    neurodecon deconvolve sample.tif --model model -o net.tif
    neurodecon deconvolve sample.tif --beads beads.tif --bead-diameter 0.1 \\
        --method rl-accel --iterations auto --background auto -o rl_accel.tif

and score against the truth (PSNR / SSIM after the affine intensity fit; lateral decorrelation
resolution), beside RL and RL-TV stopped at their best iteration chosen with the truth (the
oracle; PSF from the same beads, background estimated). Prints a Markdown table per microscope
and writes ``results.json``.

    python benchmarks/bench_learn_matrix.py --microscope widefield --out benchmarks/_out/matrix
    python benchmarks/bench_learn_matrix.py --microscope all --time-limit 20 --out ...
    python benchmarks/bench_learn_matrix.py --report benchmarks/_out/matrix   # tables only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import microscopes as mic  # noqa: E402  (the benchmarks' own module, next to this file)

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "neurodecon"]
TEST_FAMILIES = ("filaments", "sheets", "puncta")
BEAD_DIAMETER = 0.1


def run(args: list, env: dict) -> float:
    """Run a CLI command, fail loudly, return its wall time."""
    t0 = time.perf_counter()
    print("$ neurodecon " + " ".join(shlex.quote(str(a)) for a in args[3:]), flush=True)
    subprocess.run([str(a) for a in args], check=True, env=env)
    return time.perf_counter() - t0


def score(pred: np.ndarray, truth: np.ndarray, vox) -> dict:
    from neurodecon.metrics import decorrelation, normalize_pair, psnr, ssim

    p, t = normalize_pair(pred, truth, "affine")
    dec = decorrelation(pred, voxel_size_um=vox, plane="xy")
    res = np.asarray(dec.resolution_um, dtype=float)
    return {
        "psnr": float(psnr(p, t, data_range=1.0)),
        "ssim": float(ssim(p, t, data_range=1.0)),
        "decorr_xy_um": float(res.mean()) if np.isfinite(res).all() else float("nan"),
    }


def oracle(image, psf, truth, method, *, cap=300, patience=30) -> dict:
    """Best PSNR and best SSIM over the iterations of ``method``, chosen with the truth."""
    from neurodecon.classical import deconvolve
    from neurodecon.metrics import normalize_pair, psnr, ssim

    best = {"psnr": (-np.inf, 0), "ssim": (-np.inf, 0)}

    def cb(it, est):
        p, t = normalize_pair(est, truth, "affine")
        for key, fn in (("psnr", psnr), ("ssim", ssim)):
            if key == "ssim" and it % 5 and it > 3:
                continue
            v = float(fn(p, t, data_range=1.0))
            if v > best[key][0]:
                best[key] = (v, it)
        return it - max(best["psnr"][1], best["ssim"][1]) < patience

    t0 = time.perf_counter()
    deconvolve(image, psf, method, iterations=cap, background="auto", device="cpu", callback=cb)
    return {
        "psnr": best["psnr"][0],
        "psnr_iteration": best["psnr"][1],
        "ssim": best["ssim"][0],
        "ssim_iteration": best["ssim"][1],
        "seconds": time.perf_counter() - t0,
    }


def timing(name: str, out: Path, repeats: int = 3) -> dict:
    """Inference time on a 48×160×160 volume: the model vs rl-accel auto, the PSF in memory.

    Both through the Python API (no process start, no bead extraction: the PSF is resolved once,
    as a user who saved it with ``--psf-out`` would have it); best of ``repeats`` after a warm-up.
    """
    import neurodecon as nd
    from neurodecon.learn import load_model, predict
    from neurodecon.psf import resolve_psf

    d = out / name
    image = nd.read(d / f"{TEST_FAMILIES[0]}.tif")
    vox = image.voxel_size_um
    psf = resolve_psf(image_shape=image.data.shape, image_voxel_size_um=vox,
                      beads=d / "beads.tif", bead_diameter_um=BEAD_DIAMETER).psf  # fmt: skip
    model = load_model(d / "model")

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    res = nd.deconvolve(image.data, psf, method="rl-accel", iterations="auto",
                        background="auto", device="cpu", return_result=True)  # fmt: skip
    return {
        "shape": list(image.data.shape),
        "network_s": best(lambda: predict(model, image.data, voxel_size_um=vox, device="cpu")),
        "rl_accel_auto_s": best(
            lambda: nd.deconvolve(
                image.data,
                psf,
                method="rl-accel",
                iterations="auto",
                background="auto",
                device="cpu",
            )
        ),  # fmt: skip
        "rl_accel_auto_iterations": int(res.iterations),
    }


def one_microscope(name: str, out: Path, args, env: dict) -> dict:
    import neurodecon as nd
    from neurodecon.psf import resolve_psf

    m = mic.MICROSCOPES[name]
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    vox = m.voxel_size_um
    nd.write(d / "beads.tif", mic.bead_stack(name, seed=args.seed), voxel_size_um=vox,
             overwrite=True)  # fmt: skip
    model = d / "model"
    train = [*CLI, "train", "--beads", d / "beads.tif", "--bead-diameter", BEAD_DIAMETER,
             "-o", model, "--overwrite", "--device", "cpu", *shlex.split(args.extra)]  # fmt: skip
    if args.time_limit:
        train += ["--time-limit", args.time_limit]
    result: dict = {"microscope": m.name, "notes": m.notes, "train_command": train[3:]}
    if not args.skip_train:
        result["train_seconds"] = run(train, env)
    result["families"] = {}
    for i, family in enumerate(args.families):
        truth, image = mic.sample(name, family, seed=args.seed + 10 * (i + 1))
        nd.write(d / f"{family}.tif", image, voxel_size_um=vox, overwrite=True)
        row: dict = {"raw": score(image, truth, vox)}
        net = [*CLI, "deconvolve", d / f"{family}.tif", "--model", model,
               "-o", d / f"{family}_net.tif", "--overwrite", "--device", "cpu"]  # fmt: skip
        t_net = run(net, env)
        row["network"] = {**score(nd.read(d / f"{family}_net.tif").data, truth, vox),
                          "seconds": t_net}  # fmt: skip
        t_acc = run([*CLI, "deconvolve", d / f"{family}.tif", "--beads", d / "beads.tif",
                     "--bead-diameter", BEAD_DIAMETER, "--method", "rl-accel", "--iterations",
                     "auto", "--background", "auto", "-o", d / f"{family}_rlaccel.tif",
                     "--overwrite", "--device", "cpu"], env)  # fmt: skip
        row["rl-accel auto"] = {**score(nd.read(d / f"{family}_rlaccel.tif").data, truth, vox),
                                "seconds": t_acc}  # fmt: skip
        psf = resolve_psf(image_shape=image.shape, image_voxel_size_um=vox,
                          beads=d / "beads.tif", bead_diameter_um=BEAD_DIAMETER).psf  # fmt: skip
        for method in ("rl", "rltv"):
            row[f"{method} oracle"] = oracle(image, psf, truth, method)
        result["families"][family] = row
        print(json.dumps({family: row}, indent=1), flush=True)
    return result


def table(result: dict) -> str:
    fams = list(result["families"])
    methods = ["raw", "rl oracle", "rltv oracle", "rl-accel auto", "network"]
    lines = [f"#### {result['microscope']} ({result['notes']})", ""]
    if "train_seconds" in result:
        lines.append(f"training: {result['train_seconds'] / 60:.1f} min (whole command)")
        lines.append("")
    head = " | ".join(f"{f} PSNR / SSIM" for f in fams)
    lines += [f"| method | {head} | mean PSNR / SSIM | decorr. xy (µm) | time (s) |",
              "| --- " * (len(fams) + 4) + "|"]  # fmt: skip
    for meth in methods:
        cells, ps, ss, dc, ts = [], [], [], [], []
        for f in fams:
            r = result["families"][f][meth]
            cells.append(f"{r['psnr']:.2f} / {r['ssim']:.3f}")
            ps.append(r["psnr"])
            ss.append(r["ssim"])
            dc.append(r.get("decorr_xy_um", float("nan")))
            ts.append(r.get("seconds", float("nan")))
        lines.append(f"| {meth} | " + " | ".join(cells)
                     + f" | {np.mean(ps):.2f} / {np.mean(ss):.3f} | {np.nanmean(dc):.3f}"
                     f" | {np.nanmean(ts):.1f} |")  # fmt: skip
    t = result.get("timing")
    if t:
        lines += ["", f"inference on {'×'.join(map(str, t['shape']))} (Python API, best of 3): "
                  f"network {t['network_s']:.2f} s, rl-accel auto {t['rl_accel_auto_s']:.2f} s "
                  f"({t['rl_accel_auto_iterations']} iterations)"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--microscope", default="all", help=f"one of {list(mic.MICROSCOPES)} or all")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "_out" / "matrix"))
    ap.add_argument("--families", default=",".join(TEST_FAMILIES))
    ap.add_argument("--time-limit", default=None, help="train --time-limit (minutes)")
    ap.add_argument("--extra", default="", help="extra train options (quoted)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-train", action="store_true", help="reuse OUT/NAME/model")
    ap.add_argument("--report", default=None, help="print the tables of an earlier --out")
    ap.add_argument("--timing", action="store_true", help="only the inference timing (OUT/NAME)")
    ap.add_argument("--no-timing", action="store_true", help="skip the inference timing")
    args = ap.parse_args()
    if args.report:
        for f in sorted(Path(args.report).glob("*/results.json")):
            print(table(json.loads(f.read_text())))
        return
    args.families = [f for f in args.families.split(",") if f]
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    out = Path(args.out)
    names = list(mic.MICROSCOPES) if args.microscope == "all" else [args.microscope]
    for name in names:
        if args.timing:
            f = out / name / "results.json"
            result = json.loads(f.read_text()) if f.exists() else {}
            result["timing"] = timing(name, out)
            f.write_text(json.dumps(result, indent=1, default=str))
            print(name, json.dumps(result["timing"]), flush=True)
            continue
        result = one_microscope(name, out, args, env)
        if not args.no_timing:
            result["timing"] = timing(name, out)
        (out / name / "results.json").write_text(json.dumps(result, indent=1, default=str))
        print(table(result), flush=True)


if __name__ == "__main__":
    main()
