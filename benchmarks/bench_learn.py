"""Learned deconvolution vs best-iteration RL / RL-TV on held-out phantom families.

A simulated bead stack imaged with a known confocal PSF → ``extract_psf`` (o*, i*, PSF) →
``train`` in bead mode on phantom families A → test on families B (not used in training) imaged
with the same microscope. Classical methods use the bead-extracted PSF (the same information the
network had) and are scored at their best iteration (per metric, chosen with the ground truth —
an upper bound on what a user can pick). Metrics: ``neurodecon.metrics`` PSNR/SSIM after the
affine intensity fit to the truth. Also: training wall/CPU time, inference throughput.

Training runs the user's command, ``neurodecon train --beads beads.tif --bead-target bead|psf …``
(printed), with a
wall-clock budget (``--time-limit``, default 19.5 min for the whole command on this machine).

    .venv/bin/python benchmarks/bench_learn.py --out /tmp/bench_learn            # paper network
    # physics-aware variant: input [raw, RL_K(raw)], residual on RL_K (RL_K scored on its own too)
    .venv/bin/python benchmarks/bench_learn.py --physics rl --out /tmp/bench_learn_rl
    # the configuration that beats best-iteration RL-TV (and RL) in PSNR and SSIM on 2 cores
    .venv/bin/python benchmarks/bench_learn.py --bead-target psf --physics rl --physics-method rl \
        --physics-iterations 100 --ssim-weight 0.2 --time-limit 19.5 --out /tmp/bench_learn_psf
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

MICROSCOPE = {
    "na": 1.4,
    "wavelength_um": 0.52,
    "excitation_wavelength_um": 0.488,
    "immersion_index": 1.515,
    "pinhole_au": 1.0,
}
VS = (0.1, 0.05, 0.05)
PHOTONS, BACKGROUND, READ_NOISE = 300.0, 5.0, 1.0
TRAIN_FAMILIES = ("ellipsoids", "tubes", "sponge")
TEST_FAMILIES = ("filaments", "sheets", "puncta")


def score(pred, truth):
    from neurodecon.metrics import normalize_pair, psnr, ssim

    p, t = normalize_pair(pred, truth, "affine")
    return psnr(p, t, data_range=1.0), ssim(p, t, data_range=1.0)


def best_iteration(sample, psf, truth, method, iterations, ssim_every, device="cpu", patience=40):
    """Best PSNR and best SSIM over the iterations (each with its iteration), chosen with the truth.

    Runs up to ``iterations`` and stops once both metrics have not improved for ``patience``
    iterations (the optimum is then behind us, not cut off by the cap).
    """
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
        return it - max(best["psnr"][1], best["ssim"][1]) < patience

    t0 = time.perf_counter()
    deconvolve(
        sample,
        psf,
        method,
        iterations=iterations,
        background=BACKGROUND,
        device=device,
        callback=cb,
    )
    return best, time.perf_counter() - t0


def train_cli(args, beads_file: Path, model_dir: Path) -> tuple[float, float, list[str]]:
    """Run ``neurodecon train`` (the user's command) on the bead stack; (wall s, CPU s, argv)."""
    import resource
    import subprocess
    import sys

    kernel = [
        "--beads",
        str(beads_file),
        "--bead-diameter",
        "0.1",
        "--bead-target",
        args.bead_target,
    ]
    argv = [
        sys.executable,
        "-m",
        "neurodecon",
        "train",
        *kernel,
        "--phantoms",
        ",".join(TRAIN_FAMILIES),
        "--n-phantoms",
        "9",
        "--pool-shape",
        "48",
        "128",
        "128",
        "--patch",
        "32",
        "64",
        "64",
        "--batch",
        "2",
        "--steps",
        str(args.steps),
        "--lr",
        str(args.lr),
        "--base-channels",
        str(args.base_channels),
        "--net-depth",
        str(args.depth),
        "--photons",
        "100,300,1000",
        "--backgrounds",
        args.backgrounds,
        "--loss",
        args.loss,
        "--hessian-alpha",
        str(args.hessian_alpha),
        "--ssim-weight",
        str(args.ssim_weight),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--seed",
        "1",
        "--val-every",
        str(args.val_every),
        "--checkpoint-every",
        "100",
        "-o",
        str(model_dir),
        "--overwrite",
    ]
    if args.time_limit:
        argv += ["--time-limit", str(args.time_limit)]
    if args.physics != "none":
        argv += [
            "--physics-input",
            args.physics,
            "--physics-method",
            args.physics_method,
            "--physics-iterations",
            str(args.physics_iterations),
            "--physics-background",
            str(args.physics_background),
        ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, argv[2:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps",
        type=int,
        default=5000,
        help="training steps (the --time-limit usually ends training first)",
    )
    ap.add_argument(
        "--time-limit",
        type=float,
        default=19.5,
        help="wall-clock budget of `neurodecon train` in minutes (0 = none)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-channels", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="mae")
    ap.add_argument("--hessian-alpha", type=float, default=0.002)
    ap.add_argument("--ssim-weight", type=float, default=0.0, help="W · (1 − SSIM) in the loss")
    ap.add_argument("--backgrounds", default="0,2,5,10", help="training backgrounds (counts)")
    ap.add_argument("--val-every", type=int, default=50)
    ap.add_argument(
        "--iterations",
        type=int,
        default=400,
        help="max RL / RL-TV iterations (each stops 40 iterations after its best)",
    )
    ap.add_argument("--test-shape", nargs=3, type=int, default=(40, 128, 128))
    ap.add_argument(
        "--physics",
        choices=("none", "rl"),
        default="none",
        help="physics-aware variant: RL_K of the input as a second channel",
    )
    ap.add_argument("--physics-method", choices=("rl", "rl-accel"), default="rl-accel")
    ap.add_argument("--physics-iterations", type=int, default=30)
    ap.add_argument(
        "--physics-background",
        default="auto",
        help="background of the RL_K input: a number of counts or auto (default auto)",
    )
    ap.add_argument(
        "--bead-target",
        choices=("bead", "psf"),
        default="bead",
        help="`train --bead-target`: bead = the paper's bead mode (X = i ⊛ o*, Y = i ⊛ i*); "
        "psf = the PSF extracted from the same beads (X = i ⊛ PSF, Y = i)",
    )
    ap.add_argument(
        "--device", default="cpu", help="device of training, inference and RL (default cpu)"
    )
    ap.add_argument(
        "--psf-true",
        type=Path,
        default=None,
        help="the microscope's PSF as .npy (default: simulated with psfmodels; for "
        "machines without psfmodels, save it once with --save-psf-true)",
    )
    ap.add_argument(
        "--save-psf-true", type=Path, default=None, help="write the simulated PSF here and stop"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("/tmp/bench_learn"),
        help="folder for the bead stack, the model and learn.json",
    )
    args = ap.parse_args()

    import torch

    from neurodecon.io import write
    from neurodecon.learn import load_model, predict
    from neurodecon.psf import extract_psf, make_psf
    from neurodecon.synth import forward_model, phantom

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.psf_true is not None:
        psf_true = np.load(args.psf_true).astype(np.float32)
    else:
        psf_true = make_psf("confocal", shape=(33, 49, 49), voxel_size_um=VS, **MICROSCOPE)
    if args.save_psf_true is not None:
        np.save(args.save_psf_true, psf_true)
        return
    bead_truth = phantom(
        "beads",
        shape=(40, 192, 192),
        voxel_size_um=VS,
        seed=11,
        feature_um=VS[2],
        beads_diameter_um=0.1,
        beads_spacing=2.4 / VS[2],
    )
    beads = forward_model(
        bead_truth,
        psf_true,
        photons=4 * PHOTONS,
        background=BACKGROUND,
        read_noise=READ_NOISE,
        seed=12,
    )
    beads_file = args.out / "beads.tif"
    write(beads_file, beads, voxel_size_um=VS, overwrite=True)
    # the classical methods get the PSF that `train` extracts from the same stack (deterministic)
    bp = extract_psf(beads, voxel_size_um=VS, bead_diameter_um=0.1)
    print(
        f"beads: {bp.n_used} used, {len(bp.rejected)} rejected, FWHM (z,y,x) "
        f"{tuple(round(float(v), 3) for v in bp.fwhm_um)} µm",
        flush=True,
    )

    model_dir = args.out / "bench_model"
    train_wall, train_cpu, command = train_cli(args, beads_file, model_dir)
    model = load_model(model_dir)
    mc = model.config
    print(
        f"neurodecon {' '.join(command)}\n→ {mc['steps_done']} steps, wall {train_wall:.0f} s, "
        f"CPU {train_cpu:.0f} s, pool {mc['training_data']['pool_build_s']:.0f} s, "
        f"step time {mc['training_time_s']:.0f} s",
        flush=True,
    )

    rows = []
    for k, fam in enumerate(TEST_FAMILIES):
        truth = phantom(fam, shape=tuple(args.test_shape), voxel_size_um=VS, seed=100 + k)
        sample = forward_model(
            truth,
            psf_true,
            photons=PHOTONS,
            background=BACKGROUND,
            read_noise=READ_NOISE,
            seed=200 + k,
        )
        t0 = time.perf_counter()
        net_out = predict(model, sample, voxel_size_um=VS, device=args.device)
        t_net = time.perf_counter() - t0
        row = {
            "family": fam,
            "input": score(sample, truth),
            "network": score(net_out, truth),
            "net_voxels_per_s": sample.size / t_net,
            "net_s": t_net,
        }
        if args.physics != "none":
            from neurodecon.learn import physics_channel

            row["rl_k"] = score(
                physics_channel(
                    sample,
                    bp.psf,
                    method=args.physics_method,
                    iterations=args.physics_iterations,
                    background=args.physics_background,
                    device=args.device,
                ),
                truth,
            )
        for method in ("rl", "rltv"):
            best, secs = best_iteration(
                sample, bp.psf, truth, method, args.iterations, 5, args.device
            )
            row[method] = (best["psnr"][0], best["ssim"][0])
            row[method + "_iters"] = (best["psnr"][1], best["ssim"][1])
            row[method + "_s"] = secs
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)

    val = mc["validation"]
    print(
        f"\ntraining: {mc['steps_done']} steps, `neurodecon train` wall {train_wall:.0f} s, "
        f"CPU {train_cpu:.0f} s ({args.threads} threads); validation PSNR "
        f"{val['best']['psnr']:.2f} dB at step {val['best']['step']} "
        f"(input {val['input_baseline']['psnr']:.2f} dB)\n"
    )
    net_name = (
        "network"
        if args.physics == "none"
        else f"network + {args.physics_method} {args.physics_iterations} input (RL_K alone)"
    )
    print(
        f"| test family | input | RL best (it) | RL-TV best (it) | {net_name} | network voxels/s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        f = lambda v: f"{v[0]:.2f} / {v[1]:.3f}"  # noqa: E731
        print(
            f"| {r['family']} | {f(r['input'])} | "
            f"{f(r['rl'])} ({r['rl_iters'][0]}/{r['rl_iters'][1]}) | "
            f"{f(r['rltv'])} ({r['rltv_iters'][0]}/{r['rltv_iters'][1]}) | {f(r['network'])}"
            + (f" ({f(r['rl_k'])})" if "rl_k" in r else "")
            + " | "
            f"{r['net_voxels_per_s']:.3g} |"
        )
    keys = ("input", "rl", "rltv", "network") + (("rl_k",) if "rl_k" in rows[0] else ())
    mean = {k: tuple(np.mean([r[k][i] for r in rows]) for i in range(2)) for k in keys}
    print(
        "| **mean** | "
        + " | ".join(
            f"{mean[k][0]:.2f} / {mean[k][1]:.3f}" for k in ("input", "rl", "rltv", "network")
        )
        + (f" ({mean['rl_k'][0]:.2f} / {mean['rl_k'][1]:.3f})" if "rl_k" in mean else "")
        + " | |"
    )
    wins = mean["network"][0] > mean["rltv"][0] and mean["network"][1] > mean["rltv"][1]
    print(
        f"\nnetwork beats best-iteration RL-TV in mean PSNR and SSIM: {wins}; "
        f"`neurodecon train` wall {train_wall / 60:.1f} min"
    )
    (args.out / "learn.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "mean": mean,
                "train_wall_s": train_wall,
                "train_cpu_s": train_cpu,
                "command": command,
                "steps_done": mc["steps_done"],
                "validation": val,
                "beats_rltv": wins,
            },
            indent=2,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
