"""Blocked deconvolution (``neurodecon.blocked``): accuracy against the whole volume, memory, speed.

    .venv/bin/python benchmarks/bench_blocked.py halo  [--shape 64 256 256]
    .venv/bin/python benchmarks/bench_blocked.py methods [--shape 64 256 256]
    .venv/bin/python benchmarks/bench_blocked.py large [--shape 64 1024 2048] [--available-mb 128]

``halo``: a phantom (tubes, ellipsoids, puncta; 300 photons, background 5) blurred by a widefield
(NA 1.4, long tails) and a confocal PSF (NA 1.4, pinhole 1 AU) at 0.2×0.1×0.1 µm; RL at 10, 50
and 200 iterations, whole volume versus 2×2×2 blocks with halos of 0.5–3 PSF half-supports
(+4 voxels; the default is 2): relative L2 difference, and times.

``methods``: the same phantom and PSFs, rl-accel, RL-TV and Landweber at 50 iterations and the
Tikhonov filter, whole volume versus 2×2×2 blocks with the default halo.

``large``: an OME-Zarr of ``--shape`` (float32; written tile by tile, never whole) deconvolved by
the CLI (`neurodecon deconvolve in.ome.zarr -o out.ome.zarr --method rl --iterations 20`) in a
child process inside a cgroup (v1 memory controller; needs root) whose limit leaves it
``--available-mb`` above the peak RSS of Python, torch and NeuroDecon on a tiny volume; with
``--cluster`` also the same without a limit on a local 2-worker Dask cluster. Peak RSS (the
child's, its workers' for the cluster), wall time, throughput against a whole-volume RL 20 on a
64×512×512 crop in this process.

    .venv/bin/python benchmarks/bench_blocked.py model [--shape 64 1024 1024] [--block 32 512 512]
        [--halo-factors 0.25,0.5]
    .venv/bin/python benchmarks/bench_blocked.py scaling [--shape 64 512 512] [--block 32 256 256]

``model``: the shipped default network (``src/neurodecon/models/default``: U-Net with an
rl-accel RL_29 input channel) on an OME-Zarr of ``--shape`` (the same phantom at the model's
0.1×0.05×0.05 µm, confocal PSF), whole-volume ``predict`` against ``deconvolve_blocked(...,
model="default")`` with 2×2×2 blocks by default, each in its own child process: max |Δ| / range,
relative L2, wall time and the child's peak RSS; and the blocked run again with the decisions
made in one streaming pass (as for a volume above 1 GB) to measure how close those are.

    .venv/bin/python benchmarks/bench_blocked.py decisions [--shape 64 1024 1024]

``decisions``: the global decisions of a frame too large to read whole (above 1 GB), on the
``model`` input (a dense phantom, background 5): the background ``"auto"``, the flat level and
the default network's normalisation percentiles from one streaming pass (the rule now: tiles
with a halo, a uniform lattice of about 8 M voxels), from the 8 crops of the previous rule, and
exactly from the whole volume in memory; with each one's time.

``scaling``: a weak-scaling estimate. The same input processed block by block (``--method
model`` the default network, or ``rl`` 20 iterations) with 1 and 2 worker threads and a 2-process
local Dask cluster: time per block, blocks per second, and the I/O share (reading each block's
region and writing its core, timed alone). Extrapolated to N workers as ``min(N / t_block,
1 / t_io)`` blocks/s (I/O serialised on a shared store: pessimistic) and ``N / t_block`` (I/O
in parallel). An estimate: measured on whatever cores the run gets (the numbers in
BENCHMARKS.md come from a 2-core machine), the extrapolation assumes one free core per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VOX = (0.2, 0.1, 0.1)
OUT = Path(__file__).parent / "_out" / "blocked"


def _psf(kind: str) -> np.ndarray:
    from neurodecon.psf import make_psf

    return make_psf(kind, shape=(31, 41, 41), voxel_size_um=VOX, na=1.4, wavelength_um=0.52,
                    excitation_wavelength_um=0.488)  # fmt: skip


def _image(shape, psf, seed=1) -> np.ndarray:
    from neurodecon.synth import forward_model, phantom

    truth = phantom("tubes,ellipsoids,puncta", shape=shape, voxel_size_um=VOX, seed=seed)
    return forward_model(truth, psf, photons=300, background=5, seed=seed).astype(np.float32)


def halo_sweep(shape) -> list[dict]:
    """Relative L2 of blocked against whole-volume RL, per PSF, iterations and halo factor."""
    from neurodecon.blocked import deconvolve_blocked, psf_half_support
    from neurodecon.classical import deconvolve

    rows = []
    core = tuple(-(-n // 2) for n in shape)  # 2×2×2 blocks: every block has inner faces
    for kind in ("widefield", "confocal"):
        psf = _psf(kind)
        img = _image(shape, psf)
        half = psf_half_support(psf)
        for it in (10, 50, 200):
            t = time.perf_counter()
            whole = deconvolve(img, psf, "rl", iterations=it, background=5.0, device="cpu")
            t_whole = time.perf_counter() - t
            for factor in (0.5, 1.0, 2.0, 3.0):
                halo = tuple(int(np.ceil(factor * h)) + 4 for h in half)
                out = OUT / f"h_{kind}_{it}_{factor}.ome.zarr"
                t = time.perf_counter()
                deconvolve_blocked(img, out, psf, "rl", iterations=it, background=5.0,
                                   block=core, halo=halo, overwrite=True, device="cpu")  # fmt: skip
                t_blk = time.perf_counter() - t
                import neurodecon as nd

                res = nd.read(out).data
                rel = float(np.linalg.norm(res - whole) / np.linalg.norm(whole))
                row = {"psf": kind, "half_support": list(half), "iterations": it,
                       "halo_factor": factor, "halo": list(halo), "rel_l2": rel,
                       "t_whole_s": round(t_whole, 2), "t_blocked_s": round(t_blk, 2)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(out)
    return rows


def methods_at_default_halo(shape) -> list[dict]:
    """Relative L2 of blocked against whole-volume runs for the other methods, default halo."""
    import neurodecon as nd
    from neurodecon.blocked import deconvolve_blocked
    from neurodecon.classical import deconvolve

    rows = []
    core = tuple(-(-n // 2) for n in shape)
    for kind in ("widefield", "confocal"):
        psf = _psf(kind)
        img = _image(shape, psf)
        for method, it in (("rl-accel", 50), ("rltv", 50), ("landweber", 50), ("tikhonov", None)):
            opts = {"background": 5.0, "device": "cpu"}
            if it is not None:
                opts["iterations"] = it
            whole = deconvolve(img, psf, method, **opts)
            out = OUT / f"m_{kind}_{method}.ome.zarr"
            run = deconvolve_blocked(img, out, psf, method, block=core, overwrite=True, **opts)
            res = nd.read(out).data
            rel = float(np.linalg.norm(res - whole) / np.linalg.norm(whole))
            row = {"psf": kind, "method": method, "iterations": it, "halo": list(run.plan.halo),
                   "rel_l2": rel}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(out)
    return rows


def _write_large(path: Path, shape, psf) -> None:
    """An OME-Zarr of ``shape`` made of tiled 64×512×512 simulated stacks (never whole)."""
    from neurodecon.io import create_ome_zarr

    tile = _image((min(shape[0], 64), 512, 512), psf)
    arr = create_ome_zarr(path, shape=shape, chunks=(8, 256, 256), axes="ZYX",
                          voxel_size_um=VOX)  # 2 MB chunks, as microscopes write them  # fmt: skip
    for z in range(0, shape[0], tile.shape[0]):
        for y in range(0, shape[1], 512):
            for x in range(0, shape[2], 512):
                arr[z : z + tile.shape[0], y : y + 512, x : x + 512] = tile


def _baseline_rss(psf_file: Path, env: dict) -> int:
    """Peak RSS of the same command on a tiny volume (Python, torch, NeuroDecon themselves)."""
    import neurodecon as nd

    tiny = OUT / "tiny.ome.zarr"
    shutil.rmtree(tiny, ignore_errors=True)
    nd.write(tiny, nd.io.Image(_image((16, 64, 64), _psf("confocal")), axes="ZYX",
                               voxel_size_um=VOX))  # fmt: skip
    out_tiny = str(OUT / "tiny.out.ome.zarr")
    args = ["-q", "deconvolve", str(tiny), "--psf", str(psf_file), "--iterations", "2",
            "--block", "8", "32", "32", "--overwrite", "-o", out_tiny]  # fmt: skip
    peak = "[x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]"
    code = f"import sys, neurodecon.cli as c; c.main(sys.argv[1:]); print({peak})"
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True).stdout  # fmt: skip
    return int(out.split("VmHWM:")[1].split()[0]) * 1024


def _in_cgroup(limit: int) -> list[str]:
    """A command prefix that runs a child in a fresh cgroup (v1 memory) limited to ``limit``."""
    group = Path("/sys/fs/cgroup/memory/neurodecon-bench")
    group.mkdir(exist_ok=True)
    (group / "memory.limit_in_bytes").write_text(str(limit))
    return ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"]


def _child(cmd: list[str], env: dict) -> tuple[float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if run.returncode != 0:
        raise SystemExit(f"failed ({run.returncode}): {' '.join(cmd)}\n{run.stderr[-2000:]}")
    if peak <= before * 1024:
        peak = -1  # not measurable: an earlier child was larger
    return wall, peak, run.stdout.strip()


def large(shape, available_mb: int, halo, cluster: bool) -> dict:
    """The done-when run: a volume ≥ 4× the memory left to the process, then 2 workers."""
    import tifffile

    from neurodecon.classical import deconvolve

    OUT.mkdir(parents=True, exist_ok=True)
    psf = _psf("confocal")
    src, psf_file = OUT / "large.ome.zarr", OUT / "psf.tif"
    if not (src / "zarr.json").is_file():  # reused between runs of the benchmark
        _write_large(src, shape, psf)
    tifffile.imwrite(psf_file, psf, imagej=True, resolution=(10.0, 10.0),
                     metadata={"spacing": VOX[0], "unit": "um", "axes": "ZYX"})  # fmt: skip
    volume_bytes = int(np.prod(shape)) * 4
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    base = _baseline_rss(psf_file, env)
    limit = base + available_mb * (1 << 20)
    exe = [sys.executable, "-m", "neurodecon", "-q", "deconvolve", str(src), "--psf",
           str(psf_file), "--method", "rl", "--iterations", "20", "--background", "5",
           "--device", "cpu", "--overwrite"]  # fmt: skip
    if halo:
        exe += ["--halo", *map(str, halo)]
    wall, peak, msg = _child([*_in_cgroup(limit), *exe, "-o", str(OUT / "o1.ome.zarr")], env)
    crop = _image((64, 512, 512), psf)
    t = time.perf_counter()
    deconvolve(crop, psf, "rl", iterations=20, background=5.0, device="cpu")
    whole_rate = crop.size / (time.perf_counter() - t)
    wall2 = peak2 = 0.0
    msg2 = "not run (--cluster)"
    if cluster:
        wall2, peak2, msg2 = _child([*exe, "--workers", "2", "-o", str(OUT / "o2.ome.zarr")], env)
    result = {
        "shape": list(shape),
        "volume_gb": volume_bytes / 1e9,
        "baseline_rss_gb": base / 1e9,
        "cgroup_memory_limit_gb": limit / 1e9,
        "available_mb": available_mb,
        "halo": halo or "default",
        "volume_over_available": volume_bytes / (available_mb << 20),
        "in_process": {
            "wall_s": wall,
            "peak_rss_gb": peak / 1e9,
            "voxels_per_s": int(np.prod(shape)) / wall,
            "message": msg,
        },  # fmt: skip
        "whole_volume_crop_voxels_per_s": whole_rate,
        "local_cluster_2_workers": {
            "wall_s": wall2,
            "peak_rss_gb": peak2 / 1e9,
            "voxels_per_s": int(np.prod(shape)) / wall2 if wall2 else None,
            "message": msg2,
        },  # fmt: skip
    }
    print(json.dumps(result, indent=1))
    return result


MODEL_VOX = (0.1, 0.05, 0.05)


def _peak_rss() -> int:
    """Peak RSS of this process (VmHWM), bytes."""
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM"))
    return int(line.split()[1]) * 1024


def _write_model_input(path: Path, shape) -> None:
    """An OME-Zarr of ``shape`` at the default model's voxel size, tile by tile (never whole)."""
    from neurodecon.io import create_ome_zarr
    from neurodecon.psf import make_psf
    from neurodecon.synth import forward_model, phantom

    psf = make_psf("confocal", shape=(31, 41, 41), voxel_size_um=MODEL_VOX, na=1.4,
                   wavelength_um=0.52, excitation_wavelength_um=0.488)  # fmt: skip
    tz, ty, tx = (min(n, t) for n, t in zip(shape, (64, 512, 512), strict=True))
    truth = phantom("tubes,ellipsoids,puncta", shape=(tz, ty, tx), voxel_size_um=MODEL_VOX, seed=1)
    tile = forward_model(truth, psf, photons=300, background=5, seed=1).astype(np.float32)
    arr = create_ome_zarr(path, shape=shape, chunks=(8, 256, 256), axes="ZYX",
                          voxel_size_um=MODEL_VOX)  # fmt: skip
    for z in range(0, shape[0], tz):
        for y in range(0, shape[1], ty):
            for x in range(0, shape[2], tx):
                part = tuple(
                    slice(0, min(t, n - s))
                    for t, n, s in zip(tile.shape, shape, (z, y, x), strict=True)
                )
                arr[z : z + tz, y : y + ty, x : x + tx] = tile[part]


def model_child(kind: str, src: str, out: str, block, threads: int, workers: int) -> dict:
    """One run in this (child) process: ``whole`` predict, ``blocked``, or ``streamed``."""
    import torch

    import neurodecon as nd
    from neurodecon.blocked import deconvolve_blocked

    torch.set_num_threads(1)
    t = time.perf_counter()
    if kind == "whole":
        from neurodecon.learn import predict

        img = nd.read(src)
        np.save(out, predict("default", img.data, voxel_size_um=img.voxel_size_um, device="cpu"))
        info: dict = {}
    else:
        if kind == "streamed":  # the decisions of a volume above 1 GB: one streaming pass
            from neurodecon.blocked import _summary

            _summary.EXACT_BYTES = 0
        halo = tuple(int(v) for v in kind[5:].split(",")) if kind.startswith("halo:") else None
        run = deconvolve_blocked(src, out, model="default", block=block, threads=threads,
                                 workers=workers or None, overwrite=True, device="cpu",
                                 halo=halo)  # fmt: skip
        info = {"blocks": len(run.plan.blocks), "core": list(run.plan.core),
                "halo": list(run.plan.halo), "decisions": run.parameters["global_decisions"],
                "est_gb_per_block": run.memory_per_block_bytes / 1e9}  # fmt: skip
    return {"kind": kind, "wall_s": round(time.perf_counter() - t, 2),
            "peak_rss_gb": round(_peak_rss() / 1e9, 3), **info}  # fmt: skip


def _run_child(*args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, __file__, "_child", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def model_mode(shape, block, halo_factors=()) -> dict:
    """Default network: blocked (whole and streamed decisions; halos ``halo_factors`` × the
    default's) against whole-volume predict."""
    import neurodecon as nd

    src = OUT / f"model_in_{'x'.join(map(str, shape))}.ome.zarr"
    if not (src / "zarr.json").is_file():
        _write_model_input(src, shape)
    block = block or tuple(-(-n // 2) for n in shape)
    b = " ".join(map(str, block))
    whole = _run_child("whole", str(src), str(OUT / "model_whole.npy"), b, "1", "0")
    ref = np.load(OUT / "model_whole.npy")
    rows = [whole]
    kinds = ["blocked", "streamed", *(f"x{f:g}" for f in halo_factors)]
    for kind in kinds:
        if kind.startswith("x"):  # a fraction of the default halo (the first blocked run's)
            f = float(kind[1:])
            kind = "halo:" + ",".join(str(max(1, round(f * h))) for h in rows[1]["halo"])
        name = kind.replace(":", "_").replace(",", "_")
        row = _run_child(kind, str(src), str(OUT / f"model_{name}.ome.zarr"), b, "1", "0")
        res = nd.read(OUT / f"model_{name}.ome.zarr").data
        row["max_abs_over_range"] = float(np.abs(res - ref).max() / (ref.max() - ref.min()))
        row["rel_l2"] = float(np.linalg.norm(res - ref) / np.linalg.norm(ref))
        rows.append(row)
    result = {"shape": list(shape), "volume_mb": int(np.prod(shape)) * 4 / 1e6,
              "block": list(block), "runs": rows}  # fmt: skip
    print(json.dumps(result, indent=1))
    return result


def _io_per_block(src: Path, plan) -> float:
    """Seconds per block of reading its region (halo included) and writing its core."""
    import zarr

    from neurodecon.io import open_lazy

    sink = zarr.open_array(str(OUT / "io_probe.zarr"), mode="w", shape=plan.shape,
                           chunks=plan.chunks, dtype="float32")  # fmt: skip
    with open_lazy(src) as lazy:
        t = time.perf_counter()
        for blk in plan.blocks:
            region = lazy.block(blk.read)
            sink[blk.core] = region[blk.crop]
    shutil.rmtree(OUT / "io_probe.zarr", ignore_errors=True)
    return (time.perf_counter() - t) / len(plan.blocks)


def scaling(shape, block, method: str) -> dict:
    """Time per block with 1 and 2 threads and 2 processes; extrapolated to N workers."""
    from neurodecon.blocked import deconvolve_blocked

    src = OUT / f"model_in_{'x'.join(map(str, shape))}.ome.zarr"
    if not (src / "zarr.json").is_file():
        _write_model_input(src, shape)
    block = tuple(block or (32, 256, 256))
    kw = (
        {"model": "default"}
        if method == "model"
        else {"psf": _model_psf(), "method": "rl", "iterations": 20, "background": 5.0}
    )
    runs = []
    for label, opts in (("1 thread", {"threads": 1}), ("2 threads", {"threads": 2}),
                        ("2 processes (dask)", {"workers": 2})):  # fmt: skip
        t = time.perf_counter()
        run = deconvolve_blocked(src, OUT / "scale.ome.zarr", block=block, overwrite=True,
                                 device="cpu", **kw, **opts)  # fmt: skip
        wall = time.perf_counter() - t
        n = len(run.plan.blocks)
        row = {"workers": label, "blocks": n, "wall_s": round(wall, 2),
               "s_per_block": round(wall / n, 3), "blocks_per_s": round(n / wall, 4)}  # fmt: skip
        runs.append(row)
        print(json.dumps(runs[-1]), flush=True)
    t_block = runs[0]["s_per_block"]
    t_io = _io_per_block(src, run.plan)
    est = {str(n): {"pessimistic_blocks_per_s": round(min(n / t_block, 1 / t_io), 3),
                    "optimistic_blocks_per_s": round(n / t_block, 3)}
           for n in (1, 2, 4, 8, 16, 32, 64)}  # fmt: skip
    result = {
        "shape": list(shape), "block": list(block), "method": method, "runs": runs,
        "io_s_per_block": round(t_io, 3), "io_share": round(t_io / t_block, 4),
        "speedup_2_threads": round(runs[1]["blocks_per_s"] / runs[0]["blocks_per_s"], 3),
        "speedup_2_processes": round(runs[2]["blocks_per_s"] / runs[0]["blocks_per_s"], 3),
        "extrapolated": est,
        "note": "an estimate: measured on the cores this run got (2 shared cores for the numbers "
        "in BENCHMARKS.md); extrapolation assumes one free core per worker",
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    return result


def _model_psf() -> np.ndarray:
    from neurodecon.psf import make_psf

    return make_psf("confocal", shape=(31, 41, 41), voxel_size_um=MODEL_VOX, na=1.4,
                    wavelength_um=0.52, excitation_wavelength_um=0.488)  # fmt: skip


def decisions(shape) -> dict:
    """Streamed, crop and whole-volume decisions of one frame (see the module's docstring)."""
    import neurodecon as nd
    from neurodecon.blocked import _global, _summary
    from neurodecon.io import open_lazy
    from neurodecon.learn import load_model, robust_range
    from neurodecon.metrics import estimate_background

    src = OUT / f"model_in_{'x'.join(map(str, shape))}.ome.zarr"
    if not (src / "zarr.json").is_file():
        _write_model_input(src, shape)
    pct = tuple(load_model("default").predict_config["normalization"]["percentiles"])
    rows = {}
    t = time.perf_counter()
    vol = nd.read(src).data.astype(np.float32)
    b = float(estimate_background(vol))
    norm = robust_range(vol, pct)
    rows["whole volume"] = {"background": b, "flat_level": float(vol.mean() - b),
                            "normalization": [norm.low, norm.high], "voxels": int(vol.size),
                            "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
    del vol
    lazy = open_lazy(src)
    t = time.perf_counter()
    crops = _global.representative_crops(lazy, shape)
    b = float(estimate_background(crops))
    norm = robust_range(crops, pct)
    rows["8 crops (previous rule)"] = {"background": b, "flat_level": float(crops.mean() - b),
                                       "normalization": [norm.low, norm.high],
                                       "voxels": int(crops.size),
                                       "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
    _summary.EXACT_BYTES = 0
    t = time.perf_counter()
    summary = _summary.frame_summary(lazy, shape)
    b = summary.background("auto")
    norm = robust_range(summary.values, pct)
    rows["one streaming pass"] = {"background": b, "flat_level": summary.flat_level(b, "rl"),
                                  "normalization": [norm.low, norm.high],
                                  "voxels": int(summary.values.size),
                                  "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
    for name, row in rows.items():
        lo, hi = row["normalization"]
        print(f"{name:26s} background {row['background']:8.3f}  flat level "
              f"{row['flat_level']:8.3f}  normalization {lo:8.3f} {hi:8.3f}  "
              f"{row['voxels']:>11,} voxels  {row['seconds']:6.1f} s")  # fmt: skip
    return {"shape": list(shape), "percentiles": list(pct), "rows": rows}


def main() -> None:
    """Run the chosen part and save its JSON under benchmarks/_out/blocked/."""
    if len(sys.argv) > 1 and sys.argv[1] == "_child":  # one run of `model`, in a child process
        kind, src, out, block, threads, workers = sys.argv[2:8]
        blk = tuple(int(v) for v in block.split())
        print(json.dumps(model_child(kind, src, out, blk, int(threads), int(workers))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("part", choices=("halo", "methods", "large", "model", "scaling", "decisions"))
    ap.add_argument("--shape", nargs=3, type=int)
    ap.add_argument("--available-mb", type=int, default=128)
    ap.add_argument("--halo", nargs=3, type=int, help="large: --halo of the CLI run")
    ap.add_argument("--cluster", action="store_true", help="large: also a 2-worker cluster")
    ap.add_argument("--block", nargs=3, type=int, help="model, scaling: the block core")
    ap.add_argument("--halo-factors", default="", help="model: also these fractions of the "
                    "default halo, e.g. 0.25,0.5")  # fmt: skip
    ap.add_argument("--method", default="model", choices=("model", "rl"), help="scaling")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "methods":
        rows = methods_at_default_halo(tuple(args.shape or (64, 256, 256)))
        (OUT / "methods.json").write_text(json.dumps(rows, indent=1))
    elif args.part == "halo":
        rows = halo_sweep(tuple(args.shape or (64, 256, 256)))
        (OUT / "halo.json").write_text(json.dumps(rows, indent=1))
    elif args.part == "model":
        factors = [float(v) for v in args.halo_factors.split(",") if v]
        res = model_mode(tuple(args.shape or (64, 1024, 1024)), args.block, factors)
        (OUT / "model.json").write_text(json.dumps(res, indent=1))
    elif args.part == "decisions":
        res = decisions(tuple(args.shape or (64, 1024, 1024)))
        (OUT / "decisions.json").write_text(json.dumps(res, indent=1))
    elif args.part == "scaling":
        res = scaling(tuple(args.shape or (64, 512, 512)), args.block, args.method)
        (OUT / "scaling.json").write_text(json.dumps(res, indent=1))
    else:
        res = large(tuple(args.shape or (64, 1024, 2048)), args.available_mb, args.halo,
                    args.cluster)  # fmt: skip
        (OUT / "large.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
