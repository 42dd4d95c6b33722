"""Learned deconvolution vs best-iteration RL / RL-TV on held-out phantom families.

A simulated bead stack imaged with a known confocal PSF → ``extract_psf`` (o*, i*, PSF) →
``train`` in bead mode on phantom families A → test on families B (not used in training) imaged
with the same microscope. Classical methods use the bead-extracted PSF (the same information the
network had) and are scored at their best iteration (per metric, chosen with the ground truth —
an upper bound on what a user can pick). Metrics: ``neurodecon.metrics`` PSNR/SSIM after the
affine intensity fit to the truth. Also: training wall/CPU time, inference throughput.

    .venv/bin/python benchmarks/bench_learn.py --steps 300 --threads 2 --out benchmarks/_out
    # physics-aware variant: input [raw, RL_K(raw)], residual on RL_K (RL_K scored on its own too)
    .venv/bin/python benchmarks/bench_learn.py --physics rl --physics-method rl-accel --physics-iterations 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

MICROSCOPE = {"na": 1.4, "wavelength_um": 0.52, "excitation_wavelength_um": 0.488,
              "immersion_index": 1.515, "pinhole_au": 1.0}
VS = (0.1, 0.05, 0.05)
PHOTONS, BACKGROUND, READ_NOISE = 300.0, 5.0, 1.0
TRAIN_FAMILIES = ("ellipsoids", "tubes", "sponge")
TEST_FAMILIES = ("filaments", "sheets", "puncta")


def score(pred, truth):
    from neurodecon.metrics import normalize_pair, psnr, ssim

    p, t = normalize_pair(pred, truth, "affine")
    return psnr(p, t, data_range=1.0), ssim(p, t, data_range=1.0)


def best_iteration(sample, psf, truth, method, iterations, ssim_every):
    from neurodecon.classical import deconvolve
    from neurodecon.metrics import normalize_pair, psnr, ssim

    best = {"psnr": (-np.inf, 0), "ssim": (-np.inf, 0)}

    def cb(it, est):
        p, t = normalize_pair(est, truth, "affine")
        v = psnr(p, t, data_range=1.0)
        if v > best["psnr"][0]:
            best["psnr"] = (v, it)
        if it % ssim_every == 0 or it <= 3:
            s = ssim(p, t, data_range=1.0)
            if s > best["ssim"][0]:
                best["ssim"] = (s, it)

    t0 = time.perf_counter()
    deconvolve(sample, psf, method, iterations=iterations, background=BACKGROUND, device="cpu",
               callback=cb)
    return best, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-channels", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--res-scale", type=float, default=0.1, help="initial residual-branch scale")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--iterations", type=int, default=60, help="max RL / RL-TV iterations")
    ap.add_argument("--test-shape", nargs=3, type=int, default=(40, 128, 128))
    ap.add_argument("--physics", choices=("none", "rl"), default="none",
                    help="physics-aware variant: RL_K of the input as a second channel")
    ap.add_argument("--physics-method", choices=("rl", "rl-accel"), default="rl-accel")
    ap.add_argument("--physics-iterations", type=int, default=10)
    ap.add_argument("--physics-background", default="auto",
                    help="background of the RL_K input: a number of counts or auto (default auto)")
    ap.add_argument("--out", type=Path, default=None, help="folder for learn.json and the model")
    args = ap.parse_args()
    if args.physics_background != "auto":
        args.physics_background = float(args.physics_background)

    import torch

    from neurodecon.learn import load_model, predict, train
    from neurodecon.psf import extract_psf, make_psf
    from neurodecon.synth import forward_model, phantom

    torch.set_num_threads(args.threads)
    psf_true = make_psf("confocal", shape=(33, 49, 49), voxel_size_um=VS, **MICROSCOPE)
    bead_truth = phantom("beads", shape=(40, 192, 192), voxel_size_um=VS, seed=11, feature_um=VS[2],
                         beads_diameter_um=0.1, beads_spacing=2.4 / VS[2])
    beads = forward_model(bead_truth, psf_true, photons=4 * PHOTONS, background=BACKGROUND,
                          read_noise=READ_NOISE, seed=12)
    bp = extract_psf(beads, voxel_size_um=VS, bead_diameter_um=0.1)
    print(f"beads: {bp.n_used} used, {len(bp.rejected)} rejected, FWHM (z,y,x) "
          f"{tuple(round(float(v), 3) for v in bp.fwhm_um)} µm")

    out = args.out or Path("/tmp/bench_learn")
    model_dir = out / "bench_model"
    cfg = {"voxel_size_um": VS, "phantoms": TRAIN_FAMILIES, "n_phantoms": 9,
           "pool_shape": (48, 128, 128), "patch": (32, 64, 64), "batch": 2, "steps": args.steps,
           "lr": args.lr, "warmup_steps": 20, "hessian_alpha": 0.002,
           "photons": (100.0, 300.0, 1000.0), "read_noise": READ_NOISE,
           "val_every": max(1, args.steps // 5), "checkpoint_every": 50, "seed": 1,
           "threads": args.threads, "device": "cpu", "physics": args.physics,
           "physics_method": args.physics_method, "physics_iterations": args.physics_iterations,
           "physics_background": args.physics_background,
           "net": {"base_channels": args.base_channels, "depth": args.depth,
                   "res_scale_init": args.res_scale}}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    train(cfg, output_dir=model_dir, blurred_bead=bp.blurred_bead, ideal_bead=bp.ideal_bead,
          overwrite=True, physics_psf=bp.psf if args.physics != "none" else None, kernel_info={"source": "simulated beads (bench_learn.py)"})
    train_wall, train_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    model = load_model(model_dir)

    rows = []
    for k, fam in enumerate(TEST_FAMILIES):
        truth = phantom(fam, shape=tuple(args.test_shape), voxel_size_um=VS, seed=100 + k)
        sample = forward_model(truth, psf_true, photons=PHOTONS, background=BACKGROUND,
                               read_noise=READ_NOISE, seed=200 + k)
        t0 = time.perf_counter()
        net_out = predict(model, sample, voxel_size_um=VS, device="cpu")
        t_net = time.perf_counter() - t0
        row = {"family": fam, "input": score(sample, truth), "network": score(net_out, truth),
               "net_voxels_per_s": sample.size / t_net}
        if args.physics != "none":
            from neurodecon.learn._physics import physics_channel

            row["rl_k"] = score(physics_channel(sample, bp.psf, method=args.physics_method,
                                                iterations=args.physics_iterations,
                                                background=args.physics_background), truth)
        for method in ("rl", "rltv"):
            best, secs = best_iteration(sample, bp.psf, truth, method, args.iterations, 5)
            row[method] = (best["psnr"][0], best["ssim"][0])
            row[method + "_iters"] = (best["psnr"][1], best["ssim"][1])
            row[method + "_s"] = secs
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)

    print(f"\ntraining: {model.config['steps_done']} steps, wall {train_wall:.0f} s, CPU {train_cpu:.0f} s "
          f"({args.threads} threads, base {args.base_channels}, depth {args.depth}, "
          f"residual scale {args.res_scale}, lr {args.lr}); "
          f"validation PSNR {model.config['validation']['best']['psnr']:.2f} dB "
          f"(input {model.config['validation']['input_baseline']['psnr']:.2f} dB)\n")
    net_name = "network" if args.physics == "none" else \
        f"network + {args.physics_method} {args.physics_iterations} input (RL_K alone)"
    print(f"| test family | input PSNR / SSIM | RL best | RL-TV best | {net_name} | network voxels/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        f = lambda v: f"{v[0]:.2f} / {v[1]:.3f}"  # noqa: E731
        print(f"| {r['family']} | {f(r['input'])} | {f(r['rl'])} (it {r['rl_iters'][0]}/{r['rl_iters'][1]}) | "
              f"{f(r['rltv'])} (it {r['rltv_iters'][0]}/{r['rltv_iters'][1]}) | {f(r['network'])}"
              + (f" ({f(r['rl_k'])})" if 'rl_k' in r else "") + " | "
              f"{r['net_voxels_per_s']:.3g} |")
    keys = ("input", "rl", "rltv", "network") + (("rl_k",) if "rl_k" in rows[0] else ())
    mean = {k: tuple(np.mean([r[k][i] for r in rows]) for i in range(2)) for k in keys}
    print("| **mean** | " + " | ".join(f"{mean[k][0]:.2f} / {mean[k][1]:.3f}" for k in ("input", "rl", "rltv", "network"))
          + (f" ({mean['rl_k'][0]:.2f} / {mean['rl_k'][1]:.3f})" if "rl_k" in mean else "") + " | |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "learn.json").write_text(json.dumps(
            {"rows": rows, "mean": mean, "train_wall_s": train_wall, "train_cpu_s": train_cpu,
             "config": cfg}, indent=2, default=float))


if __name__ == "__main__":
    main()
