"""GPU (CUDA) benchmark: CPU/CUDA agreement, classical speed, learned inference and training speed.

Run on a machine with an NVIDIA GPU (it stops with a message elsewhere)::

    python benchmarks/bench_gpu.py --out gpu.json

Sections (``--sections``, default all):

``parity``
    Every classical method on the anchor case of ``bench_classical.py`` (64×256×256, Gaussian PSF
    σ 1.5/1.5/4 px, background 5, Poisson noise), 20 iterations, ``device="cuda"`` vs
    ``device="cpu"``: relative L2 difference and max |Δ| / max |CPU|. The shipped model's
    prediction on CUDA (fp32 and the default fp16 autocast) vs the CPU (fp32).
``classical``
    One rfftn + irfftn pair on the padded grid (CUDA events), RL and rl-accel time per iteration
    (difference of two run lengths, so the host↔device copies and setup drop out), the time
    rl-accel needs to reach plain-RL@200 PSNR (whole call, copies included), and a 128×512×512
    run with its peak GPU memory in padded volumes.
``inference``
    The shipped model (physics-aware: RL_100 + network) on 64×256×256 and 128×512×512
    volumes: whole ``predict`` wall time and voxels/s; the RL_100 channel alone; fp16 and fp32.
``training``
    Seconds per training step on CUDA (fp16 autocast) for the paper's network width
    (16 base channels) at batch 2 × 32×64×64 and at batch 4 × 64×128×128.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classical import BACKGROUND, anchor_case, gaussian_psf, psnr  # noqa: E402


def _sync():
    import torch

    torch.cuda.synchronize()


def _wall(fn, repeat=3):
    """Median wall time of ``fn`` (synchronised), after one warm-up call."""
    fn()
    _sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)), float(
        np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)
    )


def parity():
    from neurodecon.classical import METHODS, POISSON_METHODS, deconvolve
    from neurodecon.learn import predict

    truth, image, psf = anchor_case()
    rows = {}
    for m in METHODS:
        kw = dict(iterations=20, background=BACKGROUND)
        cpu = deconvolve(image, psf, m, device="cpu", **kw)
        gpu = deconvolve(image, psf, m, device="cuda", **kw)
        rows[m] = _rel(gpu, cpu)
        neg = m in POISSON_METHODS and float(gpu.min()) < 0
        print(
            f"parity {m:11s}: rel L2 {rows[m][0]:.2e}, max|Δ|/max {rows[m][1]:.2e}"
            + (" NEGATIVE" if neg else ""),
            flush=True,
        )
    vol = image[:, :128, :128]
    ref = predict("default", vol, device="cpu", precision="fp32")
    for prec in ("fp32", "fp16"):
        out = predict("default", vol, device="cuda", precision=prec)
        rows[f"model {prec}"] = _rel(out, ref)
        print(
            f"parity shipped model CUDA {prec} vs CPU fp32: rel L2 {rows[f'model {prec}'][0]:.2e}, "
            f"max|Δ|/max {rows[f'model {prec}'][1]:.2e}",
            flush=True,
        )
    return rows


def classical():
    import torch

    from neurodecon.classical import Deconvolver

    truth, image, psf = anchor_case()
    res = {}
    dec = Deconvolver(psf, image.shape, method="rl", device="cuda")
    acc = Deconvolver(psf, image.shape, method="rl-accel", device="cuda")
    padded = dec.op.shape
    x = torch.rand(padded, device="cuda")
    spec = torch.fft.rfftn(x)

    def pair():
        torch.fft.irfftn(torch.fft.rfftn(x, out=spec), s=padded, out=x)

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(5):
        pair()
    ts = []
    for _ in range(50):
        start.record()
        pair()
        end.record()
        end.synchronize()
        ts.append(start.elapsed_time(end) / 1e3)
    res["fft_pair_s"] = float(np.median(ts))
    res["padded"] = padded
    print(
        f"FFT pair on {padded}: median {res['fft_pair_s'] * 1e3:.2f} ms "
        f"→ RL floor (2 pairs) {2e3 * res['fft_pair_s']:.2f} ms",
        flush=True,
    )
    for name, d in (("rl", dec), ("rl-accel", acc)):
        short = _wall(lambda d=d: d(image, iterations=10, background=BACKGROUND))
        long_ = _wall(lambda d=d: d(image, iterations=110, background=BACKGROUND))
        per = (long_ - short) / 100
        res[f"{name}_iter_s"] = per
        res[f"{name}_call10_s"] = short
        print(
            f"{name}: {per * 1e3:.2f} ms / iteration = "
            f"{per / (2 * res['fft_pair_s']):.2f} × FFT floor; "
            f"a 10-iteration call {short:.3f} s (copies and setup included)",
            flush=True,
        )
    target = psnr(dec(image, iterations=200, background=BACKGROUND), truth)
    curve = []
    acc(
        image,
        iterations=120,
        background=BACKGROUND,
        callback=lambda k, e: curve.append((k, psnr(e, truth))),
    )
    hit = next((k for k, p in curve if p >= target), None)
    res["rl200_psnr"] = target
    res["accel_best"] = max(curve, key=lambda kp: kp[1])
    if hit is not None:
        res["accel_hit_iter"] = hit
        res["accel_hit_s"] = _wall(lambda: acc(image, iterations=hit, background=BACKGROUND))
        print(
            f"rl-accel reaches plain-RL@200 ({target:.2f} dB) after {hit} iterations in "
            f"{res['accel_hit_s']:.3f} s (whole call); best {res['accel_best'][1]:.2f} dB at "
            f"{res['accel_best'][0]}",
            flush=True,
        )
    # a large volume: memory and time
    big = np.random.default_rng(0).poisson(20.0, size=(128, 512, 512)).astype(np.float32)
    dec = acc = None  # free their GPU buffers
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    bdec = Deconvolver(psf, big.shape, method="rl", device="cuda")
    t = time.perf_counter()
    bdec(big, iterations=50, background=BACKGROUND)
    _sync()
    res["big_rl50_s"] = time.perf_counter() - t
    vol_bytes = 4 * int(np.prod(bdec.op.shape))
    res["big_padded"] = bdec.op.shape
    res["big_peak_volumes"] = (torch.cuda.max_memory_allocated() - base) / vol_bytes
    print(
        f"RL 50 iterations on 128×512×512 (padded {bdec.op.shape}): {res['big_rl50_s']:.2f} s, "
        f"peak GPU memory {res['big_peak_volumes']:.1f} padded float32 volumes",
        flush=True,
    )
    return res


def inference():
    from neurodecon.learn import load_model, physics_channel, predict

    model = load_model("default")
    rng = np.random.default_rng(1)
    res = {}
    for shape in ((64, 256, 256), (128, 512, 512)):
        vol = rng.poisson(20.0, size=shape).astype(np.float32)
        n = vol.size
        predict(model, vol[:32, :64, :64], device="cuda")  # warm-up (cuFFT plans, kernels)
        for prec in ("fp16", "fp32"):
            t = _wall(lambda v=vol, p=prec: predict(model, v, device="cuda", precision=p), repeat=2)
            res[f"{shape} {prec}"] = t
            print(
                f"predict {shape} {prec}: {t:.2f} s = {n / t:.3g} voxels/s "
                "(RL_100 channel included)",
                flush=True,
            )
        t = _wall(
            lambda v=vol: physics_channel(
                v,
                model.physics_psf,
                method=model.physics["method"],
                iterations=model.physics["iterations"],
                background=model.physics.get("background", 0.0),
                device="cuda",
            ),
            repeat=2,
        )
        res[f"{shape} rl_k"] = t
        print(f"  of which RL_{model.physics['iterations']} channel: {t:.2f} s", flush=True)
    return res


def training():
    from neurodecon.learn import load_model, train

    psf = gaussian_psf((17, 17, 17), (2.0, 1.0, 1.0))
    res = {}
    for name, patch, batch, pool in (
        ("batch 2 × 32×64×64", (32, 64, 64), 2, (48, 128, 128)),
        ("batch 4 × 64×128×128", (64, 128, 128), 4, (64, 160, 160)),
    ):
        with tempfile.TemporaryDirectory() as d:
            steps = 200
            train(
                dict(
                    phantoms=("ellipsoids", "tubes"),
                    n_phantoms=4,
                    pool_shape=pool,
                    patch=patch,
                    batch=batch,
                    steps=steps,
                    val_every=100,
                    checkpoint_every=1000,
                    device="cuda",
                ),
                psf=psf,
                output_dir=Path(d) / "m",
            )
            cfg = load_model(Path(d) / "m").config
            per = cfg["training_time_s"] / cfg["steps_done"]
            res[name] = per
            print(
                f"training step on CUDA, 16 base channels, {name}: {per * 1e3:.1f} ms "
                f"({cfg['steps_done']} steps, {cfg['training_time_s']:.1f} s incl. validation)",
                flush=True,
            )
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sections", nargs="*", default=["parity", "classical", "inference", "training"]
    )
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "bench_gpu: no CUDA device here; run it on a machine with an NVIDIA GPU",
            file=sys.stderr,
        )
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    fns = {"parity": parity, "classical": classical, "inference": inference, "training": training}
    for s in args.sections:
        t = time.perf_counter()
        out[s] = fns[s]()
        print(f"[{s}: {time.perf_counter() - t:.0f} s]", flush=True)
        if args.out:
            args.out.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
