"""Wall time of `neurodecon demo` (full or --quick), step by step.

    python benchmarks/bench_demo.py [--quick] [--threads 2] [--out benchmarks/_out/demo]

Prints a Markdown table: each step of the demo (simulation, PSF from beads, each method, metrics,
figures, writing) with its wall time and the process CPU time, then the total and the ranking.
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
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
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
    print("ranking: " + " > ".join(summary["ranking"]["order"])
          + f" ({summary['ranking']['criterion']})")
    for name, m in summary["methods"].items():
        if m["metrics"].get("psnr") is not None:
            print(f"  {name}: PSNR {m['metrics']['psnr']:.2f} dB, SSIM {m['metrics']['ssim']:.3f}"
                  + (f", {m['time_s']:.1f} s" if m["time_s"] else ""))


if __name__ == "__main__":
    main()
