"""Wall time of `neurodecon demo` (full or --quick), step by step; and why the demo fixes RL's
iteration count.

    python benchmarks/bench_demo.py [--quick] [--threads 2] [--out benchmarks/_out/demo]
    python benchmarks/bench_demo.py --iterations-study [--threads 2]

Default: a Markdown table of each step of the demo (simulation, PSF from beads, each method,
metrics, figures, writing) with its wall and process CPU time, then the total and the ranking.
``--iterations-study``: on the full demo's data (PSF extracted from its beads, as in the demo),
RL, RL-TV and accelerated RL at ``auto``, 20 and 50 iterations: PSNR/SSIM against the truth,
iterations used, CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the test-suite demo (small volumes)")
    ap.add_argument("--threads", type=int, default=2, help="torch / BLAS threads (default 2)")
    ap.add_argument("--out", default=None, help="report folder (default: a temporary folder)")
    ap.add_argument(
        "--iterations-study",
        action="store_true",
        help="compare auto / 20 / 50 iterations on the demo data instead",
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    if args.iterations_study:
        iterations_study()
        return
    from neurodecon.report import demo

    marks: list[tuple[str, float, float]] = []
    last = {"key": None}

    def progress(done: int, total: int, message: str) -> None:
        key = message.split(":")[0]
        if key != last["key"]:
            last["key"] = key
            marks.append((key, time.perf_counter(), time.process_time()))

    out = args.out or tempfile.mkdtemp(prefix="neurodecon_demo_")
    t0, c0 = time.perf_counter(), time.process_time()
    summary = demo(out, overwrite=True, quick=args.quick, progress=progress)
    t1, c1 = time.perf_counter(), time.process_time()
    marks.append(("end", t1, c1))
    print(f"demo{' --quick' if args.quick else ''}, {args.threads} threads, report in {out}\n")
    print("| step | wall (s) | CPU (s) |\n| --- | ---: | ---: |")
    start = [("start", t0, c0)]
    for (name, t, c), (_, tn, cn) in zip(start + marks[:-1], marks, strict=True):
        if tn - t >= 0.05:
            print(f"| {name} | {tn - t:.1f} | {cn - c:.1f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| **total** | **{t1 - t0:.1f}** | **{c1 - c0:.1f}** |\n")
    print(f"peak resident memory: {peak:.0f} MiB")
    print(
        "ranking: "
        + " > ".join(summary["ranking"]["order"])
        + f" ({summary['ranking']['criterion']})"
    )
    for name, m in summary["methods"].items():
        if m["metrics"].get("psnr") is not None:
            print(
                f"  {name}: PSNR {m['metrics']['psnr']:.2f} dB, SSIM {m['metrics']['ssim']:.3f}"
                + (f", {m['time_s']:.1f} s" if m["time_s"] else "")
            )


def iterations_study() -> None:
    import logging

    from neurodecon.classical import deconvolve
    from neurodecon.metrics import evaluate
    from neurodecon.psf import extract_psf
    from neurodecon.report import demo_data

    chosen: dict[str, int] = {}

    class _Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if msg.startswith("iterations=auto: ") and msg.split()[1].isdigit():
                chosen["k"] = int(msg.split()[1])

    logging.getLogger("neurodecon").addHandler(_Catch())
    logging.getLogger("neurodecon").setLevel(logging.INFO)
    d = demo_data(quick=False)
    psf = extract_psf(
        d["beads"], voxel_size_um=d["voxel_size_um"], bead_diameter_um=d["bead_diameter_um"]
    ).psf
    raw = evaluate(d["sample"], d["truth"], voxel_size_um=d["voxel_size_um"])
    print(
        f"demo data {d['sample'].shape}; raw: PSNR {raw['psnr']:.2f} dB, SSIM {raw['ssim']:.3f}\n"
    )
    print("| method | iterations | used | PSNR (dB) | SSIM | CPU (s) | wall (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for method in ("rl", "rl-accel", "rltv"):
        for it in ("auto", 20, 50):
            chosen.clear()
            c0, t0 = time.process_time(), time.perf_counter()
            out = deconvolve(d["sample"], psf, method=method, iterations=it, background="auto")
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            e = evaluate(out, d["truth"], voxel_size_um=d["voxel_size_um"])
            used = chosen.get("k", it)
            print(
                f"| {method} | {it} | {used} | {e['psnr']:.2f} | {e['ssim']:.3f} | {cpu:.1f} "
                f"| {wall:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
