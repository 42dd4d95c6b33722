"""Diagnostics behind the learned-deconvolution recipe (numbers quoted in BENCHMARKS.md / docs).

``curve``: a training loop on the bench_learn.py microscope that prints, every 25 steps, the
training loss next to the loss of the RL_K channel alone on the same batches, validation PSNR/SSIM
(crops of held-out volumes of the training families, split per family), and PSNR/SSIM on a
*development* set of the held-out families (filaments, sheets, puncta; seeds 300+, never the
benchmark's 100+), so that what the validation sees can be compared with what generalises.

``background-gap MODEL``: a trained model on the benchmark's test phantoms imaged with background 0
and with background 5 counts (was the training noise model missing the background?).

``dev-reference``: best-iteration RL / RL-TV (chosen with the truth) on the development set.

``ssim-split MODEL``: on the benchmark's test phantoms, SSIM (scikit-image map after the affine
fit) split into foreground (truth > 5 % of its max), a 3-voxel shell and background, with the
background's mean and spread, for the network, its RL_K channel (background auto, as in training
and inference) and RL / RL-TV at the benchmark's best-SSIM iterations; RL_K with the auto
background vs the true one; and the score of bead mode's target (truth ⊛ i*) against the truth.

    .venv/bin/python benchmarks/learn_diagnostics.py curve --steps 400 --loss mae --alpha 0.002 \\
        --physics-method rl --physics-iterations 40
    .venv/bin/python benchmarks/learn_diagnostics.py background-gap /tmp/bench_learn/bench_model
    .venv/bin/python benchmarks/learn_diagnostics.py dev-reference
    .venv/bin/python benchmarks/learn_diagnostics.py ssim-split /tmp/bench_learn/bench_model
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_learn import (
    BACKGROUND,
    MICROSCOPE,
    PHOTONS,
    READ_NOISE,
    TEST_FAMILIES,
    TRAIN_FAMILIES,
    VS,
    best_iteration,
    score,
)


def _true_psf():
    from neurodecon.psf import make_psf

    return make_psf("confocal", shape=(33, 49, 49), voxel_size_um=VS, **MICROSCOPE)


def _bead_kernels():
    """o*, i*, PSF extracted from bench_learn.py's simulated bead stack (same seeds)."""
    from neurodecon.psf import extract_psf
    from neurodecon.synth import forward_model, phantom

    bt = phantom(
        "beads",
        shape=(40, 192, 192),
        voxel_size_um=VS,
        seed=11,
        feature_um=VS[2],
        beads_diameter_um=0.1,
        beads_spacing=2.4 / VS[2],
    )
    beads = forward_model(
        bt, _true_psf(), photons=4 * PHOTONS, background=BACKGROUND, read_noise=READ_NOISE, seed=12
    )
    bp = extract_psf(beads, voxel_size_um=VS, bead_diameter_um=0.1)
    return bp.blurred_bead, bp.ideal_bead, bp.psf


def _dev_set(background=BACKGROUND, seed0=300):
    from neurodecon.synth import forward_model, phantom

    psf = _true_psf()
    out = []
    for k, fam in enumerate(TEST_FAMILIES):
        truth = phantom(fam, shape=(40, 128, 128), voxel_size_um=VS, seed=seed0 + k)
        sample = forward_model(
            truth,
            psf,
            photons=PHOTONS,
            background=background,
            read_noise=READ_NOISE,
            seed=seed0 + 100 + k,
        )
        out.append((fam, truth, sample))
    return out


def curve(a) -> None:
    import torch

    from neurodecon.learn import (
        TrainConfig,
        TrainState,
        build_pool,
        lr_factor,
        neurodecon_loss,
        physics_channel,
        physics_function,
        robust_range,
        sample_batch,
        split_volumes,
        training_volumes,
        validation_metrics,
    )

    torch.set_num_threads(a.threads)
    o, i, psf = _bead_kernels()
    physics = a.physics_iterations > 0
    cfg = TrainConfig.from_dict(
        {
            "data": {
                "voxel_size_um": VS,
                "phantoms": TRAIN_FAMILIES,
                "n_phantoms": 9,
                "pool_shape": (48, 128, 128),
                "magnification": tuple(a.magnification),
                "patch": (32, 64, 64),
                "batch": 2,
            },
            "noise": {
                "photons": (100.0, 300.0, 1000.0),
                "read_noise": READ_NOISE,
                "backgrounds": tuple(float(v) for v in a.backgrounds.split(",")),
            },
            "optim": {"lr": a.lr, "warmup_steps": 20, "ema_decay": a.ema},
            "loss": {"kind": a.loss, "hessian_alpha": a.alpha},
            "physics": {
                "input": "rl" if physics else "none",
                "method": a.physics_method,
                "iterations": max(a.physics_iterations, 1),
            },
            "run": {"steps": a.steps, "seed": 1, "device": "cpu"},
            "net": {"base_channels": 8, "depth": 3, "res_scale_init": 1.0},
        }
    )
    d, lc, noise = cfg.data, cfg.loss, cfg.noise.resolved()  # no calibration here: the fallbacks
    t0 = time.perf_counter()
    fn = physics_function(cfg, psf) if physics else None
    sources, desc = training_volumes(cfg, None)
    pool = build_pool(
        sources,
        o,
        i,
        photons=noise.photons,
        read_noise=noise.read_noise,
        seed=2,
        norm_percentiles=d.norm_percentiles,
        backgrounds=noise.backgrounds,
        physics=fn,
        physics_draws=2,
    )
    tr, va = split_volumes(desc["volumes"], d.val_fraction)
    print(
        f"pool {time.perf_counter() - t0:.0f} s; validation volumes "
        f"{[desc['volumes'][j] for j in va]}",
        flush=True,
    )
    xv, yv = sample_batch(pool, va, 12, d.patch, np.random.default_rng(3))
    print(
        "validation: input",
        validation_metrics(xv[:, :1], yv),
        *(("RL_K", validation_metrics(xv[:, -1:], yv)) if physics else ()),
        flush=True,
    )
    dev = []
    for fam, truth, s in _dev_set():
        n = robust_range(s, d.norm_percentiles)
        ch = [n.apply(s)]
        if physics:
            ch.append(
                n.apply(
                    physics_channel(
                        s,
                        psf,
                        method=a.physics_method,
                        iterations=a.physics_iterations,
                        background="auto",
                    )
                )
            )
        dev.append((truth, np.stack(ch)[None]))
        print(f"dev {fam}: input {score(s, truth)}, network input channel {score(ch[-1], truth)}")

    def dev_eval(net):
        net.eval()
        with torch.no_grad():
            r = [score(net(torch.from_numpy(x)).numpy()[0, 0], t) for t, x in dev]
        m = np.mean(r, axis=0)
        return f"dev {m[0]:.2f}/{m[1]:.3f} (" + ", ".join(f"{p:.2f}/{q:.3f}" for p, q in r) + ")"

    st = TrainState(cfg)
    print("init", dev_eval(st.model), flush=True)
    e_net = e_base = None
    t0 = time.perf_counter()
    for step in range(a.steps):
        xb, yb = sample_batch(pool, tr, d.batch, d.patch, st.rng)
        x, y = torch.from_numpy(xb), torch.from_numpy(yb)
        for g in st.opt.param_groups:
            g["lr"] = cfg.optim.lr * lr_factor(step, cfg)
        st.net.train()
        loss = neurodecon_loss(st.net(x), y, alpha=lc.hessian_alpha, kind=lc.kind.value)
        with torch.no_grad():
            base = neurodecon_loss(x[:, -1:], y, alpha=lc.hessian_alpha, kind=lc.kind.value)
        st.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(st.net.parameters(), cfg.optim.grad_clip)
        st.opt.step()
        st.step += 1
        st.update_ema()
        e_net = loss.item() if e_net is None else 0.9 * e_net + 0.1 * loss.item()
        e_base = base.item() if e_base is None else 0.9 * e_base + 0.1 * base.item()
        if (step + 1) % 25 == 0:
            st.model.eval()
            with torch.no_grad():
                pv = np.concatenate(
                    [st.model(torch.from_numpy(xv[k : k + 1])).numpy() for k in range(len(xv))]
                )
            print(
                f"{step + 1} {time.perf_counter() - t0:.0f}s loss {e_net:.5f} / input channel "
                f"{e_base:.5f} = {e_net / e_base:.3f}; val {validation_metrics(pv, yv)}; "
                f"{dev_eval(st.model)}",
                flush=True,
            )


def background_gap(a) -> None:
    from neurodecon.learn import load_model, predict

    model = load_model(a.model)
    for bg in (0.0, 5.0):
        rows = [
            (score(s, t), score(predict(model, s, voxel_size_um=VS, device="cpu"), t))
            for _, t, s in _dev_set(background=bg, seed0=100)
        ]
        print(
            f"background {bg}: input / network per family "
            + "; ".join(f"{p[0]:.2f}/{p[1]:.3f} → {q[0]:.2f}/{q[1]:.3f}" for p, q in rows)
            + f"; network mean {np.mean([q[0] for _, q in rows]):.2f} / "
            f"{np.mean([q[1] for _, q in rows]):.3f}"
        )


def dev_reference(a) -> None:
    _, _, psf = _bead_kernels()
    res = {"rl": [], "rltv": []}
    for fam, truth, s in _dev_set():
        for m in res:
            b, _ = best_iteration(s, psf, truth, m, a.iterations, 5)
            res[m].append((b["psnr"][0], b["ssim"][0]))
            print(
                fam,
                m,
                f"{b['psnr'][0]:.2f} (it {b['psnr'][1]}) / {b['ssim'][0]:.3f} (it {b['ssim'][1]})",
            )
    for m, r in res.items():
        print(f"{m} mean {np.mean([v[0] for v in r]):.2f} / {np.mean([v[1] for v in r]):.3f}")


#: best-SSIM iterations of RL / RL-TV per test family in the benchmark (BENCHMARKS.md)
BEST_SSIM_ITERATIONS = {"rl": (140, 175, 115), "rltv": (210, 400, 150)}


def ssim_split(a) -> None:
    from scipy.ndimage import binary_dilation
    from scipy.signal import fftconvolve
    from skimage.metrics import structural_similarity

    from neurodecon.classical import deconvolve, estimate_background
    from neurodecon.learn import load_model, physics_channel, predict
    from neurodecon.metrics import normalize_pair

    model = load_model(a.model)
    k_it = model.physics["iterations"] if model.physics else 0
    _, ideal_bead, bead_psf = _bead_kernels()
    for k, (fam, truth, sample) in enumerate(_dev_set(seed0=100)):
        # bead mode trains towards truth ⊛ i*, not the truth: the ceiling of that target
        target = fftconvolve(truth, ideal_bead / ideal_bead.sum(), mode="same")
        print(
            f"{fam}: bead-mode target truth ⊛ i* vs truth: PSNR / SSIM "
            f"{score(target, truth)[0]:.2f} / {score(target, truth)[1]:.3f}"
        )
        fg = truth > 0.05 * truth.max()
        shell = binary_dilation(fg, iterations=3) & ~fg
        bg = ~(fg | shell)
        images = {"network": predict(model, sample, voxel_size_um=VS, device="cpu")}
        if k_it:
            images[f"RL_{k_it} (auto bg)"] = physics_channel(
                sample,
                model.physics_psf,
                method=model.physics["method"],
                iterations=k_it,
                background=model.physics.get("background", "auto"),
            )
        for m, its in BEST_SSIM_ITERATIONS.items():
            images[f"{m} @{its[k]}"] = deconvolve(
                sample, bead_psf, m, iterations=its[k], background=BACKGROUND, device="cpu"
            )
        print(
            f"{fam}: fractions foreground {fg.mean():.2f}, shell {shell.mean():.2f}, "
            f"background {bg.mean():.2f}"
        )
        for name, img in images.items():
            pn, tn = normalize_pair(img, truth, "affine")
            s_all, smap = structural_similarity(tn, pn, data_range=1.0, full=True)
            print(
                f"  {name:18s} SSIM {s_all:.3f} | foreground {smap[fg].mean():.3f} shell "
                f"{smap[shell].mean():.3f} background {smap[bg].mean():.3f} | background level "
                f"{pn[bg].mean():+.4f} ± {pn[bg].std():.4f}",
                flush=True,
            )
        if k_it:
            b_auto = estimate_background(sample)
            for b in (b_auto, BACKGROUND):
                x = deconvolve(
                    sample, model.physics_psf, "rl", iterations=k_it, background=b, device="cpu"
                )
                print(
                    f"  RL_{k_it} with background {b:.3f}"
                    f"{' (auto)' if b == b_auto else ' (true)'}: "
                    f"PSNR / SSIM {score(x, truth)[0]:.2f} / {score(x, truth)[1]:.3f}",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("curve")
    c.add_argument("--steps", type=int, default=400)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--loss", default="mae")
    c.add_argument("--alpha", type=float, default=0.002)
    c.add_argument("--backgrounds", default="0,2,5,10")
    c.add_argument("--magnification", nargs=2, type=float, default=(1.0, 1.0))
    c.add_argument("--ema", type=float, default=0.0, help="weight averaging (0 = off)")
    c.add_argument("--physics-method", default="rl")
    c.add_argument("--physics-iterations", type=int, default=40, help="0 = the plain network")
    c.add_argument("--threads", type=int, default=2)
    g = sub.add_parser("background-gap")
    g.add_argument("model", type=Path)
    d = sub.add_parser("dev-reference")
    d.add_argument("--iterations", type=int, default=400)
    s = sub.add_parser("ssim-split")
    s.add_argument("model", type=Path)
    a = ap.parse_args()
    {
        "curve": curve,
        "background-gap": background_gap,
        "dev-reference": dev_reference,
        "ssim-split": ssim_split,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
