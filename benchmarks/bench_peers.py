"""Side by side with the peer tools: deconwolf, RedLionfish (CPU), scikit-image and ours.

Usage::

    # both cases, 2 threads everywhere (the BENCHMARKS.md run)
    python benchmarks/bench_peers.py --cases anchor real --threads 2
    # smoke run on small volumes
    python benchmarks/bench_peers.py --quick

Writes a markdown table to stdout and everything measured to ``benchmarks/_out/peers.json``.

Peers (benchmark-only; none is a dependency of the package, a missing one is a line in the table):

- **deconwolf** (GPL-3.0) is built by this script from ``/work/shared/peers/deconwolf-*.tar.gz``
  (``--deconwolf-tarball``) in a temporary folder, following its own install documentation: CMake,
  ``-DENABLE_GPU=OFF`` (no OpenCL, hence no VkFFT), Release, against Debian's ``libfftw3-dev``
  (float + OpenMP), ``libtiff-dev``, ``libgsl-dev``, ``libpng-dev``; missing Debian packages are
  installed with ``apt-get`` when running as root (printed). The binary and its two helper
  libraries are cached under ``~/.cache/neurodecon/peers/deconwolf-<sha256 of the tarball>/``;
  nothing of it enters this repository. Its FFTW wisdom (deconwolf plans with FFTW_MEASURE and
  stores wisdom in ``$HOME/.config/deconwolf``) lives in that cache folder too; one untimed
  warm-up run per case plans the FFTs, as any deconwolf user's second run would find them.
  Method: its default, the scaled heavy-ball accelerated RL (``shb``), flat start, ``--bq 2``,
  and its own lateral PSF crop (``--xyfactor`` 0.001: 15×15 → 11×11 px on the anchor). One
  option differs from its defaults: ``--offset 0``. Its default adds 5 to the image before
  deconvolving and, in 0.4.7 without tiling, leaves it in the written result (the per-iteration
  dumps subtract it); with ``--bg b`` the floor then no longer matches the data.
- **RedLionfish** 0.10 (``pip install redlionfish==0.10``): the CPU algorithm is
  ``doRLDeconvolutionFromNpArrays(..., method="cpu")`` (its scipy.fft path,
  ``doRLDeconvolution_DL2_4``); ``method="cpu"`` never touches OpenCL, so pyopencl/reikna need no
  device. Its FFTs follow ``scipy.fft.set_workers(threads)``. It centres a PSF at n / 2 of an
  even size; the shared odd PSF (centre n // 2) would shift its result by one voxel per axis, so
  it gets the same values with one zero plane in front of each axis.
- **scikit-image** ``skimage.restoration.richardson_lucy(..., clip=False)``; its FFT convolutions
  (``scipy.signal.convolve``) follow ``scipy.fft.set_workers(threads)``.
- **ours**: ``neurodecon.deconvolve(image, psf, method="rl" | "rl-accel", iterations=N,
  background=b, device="cpu")`` (default boundary ``unknown``), torch with ``threads`` threads.

Every tool gets the same PSF array (normalised to sum 1, trimmed like our engine trims it —
values below 1e-6 of the peak — odd-sized, peak at ``n // 2``) and the same threads. Background:
ours takes ``b`` in the model ``Hx + b``; deconwolf gets ``--bg b`` (its floor of the estimate,
which then carries the background: ``b`` is subtracted from its output); RedLionfish and
scikit-image have no background term and get ``max(y − b, 0)``; ``b`` is the anchor's known
background, or ``estimate_background`` of the real stack. Boundaries: ours estimates the
outside of the field of view (``unknown``); deconwolf pads to ``image + psf − 1`` with its own
edge weighting (``--bq 2``, its default); scikit-image convolves ``mode="same"`` (zero outside);
RedLionfish's CPU path is circular (periodic) on the image grid.

Measures, each tool in a fresh subprocess per measurement (peaks never mix):

- *quality curve*: the score after every iteration up to 60, then every 5th (our callback; for
  deconwolf ``--niterdump 1``; for scikit-image and RedLionfish an observer around their FFT
  convolution that reads the current estimate without changing anything). Anchor: PSNR against
  the truth in photon units (``neurodecon.metrics.psnr``, data range = truth range, as in
  ``bench_classical.py --speed``); also the best PSNR without a border of half the PSF (the
  "interior": what is left when edge handling is taken out). Real stack (no truth): agreement
  (PSNR, data range = its range) with our plain RL@200 on the same PSF and background; reaching
  it means agreement ≥ ``--agreement`` dB (default 35). A curve stops early once it has fallen
  3 dB below its best (after 20 iterations): nothing later can be its best or its first hit.
- *time to target*: wall time of the whole call (ours / scikit-image / RedLionfish: the function
  call in a fresh process, no warm-up; deconwolf: the whole ``dw`` process: TIFF in and out,
  FFTW plans from wisdom) at the first iteration count whose score reaches plain-RL@200's
  (rounded to the checkpoints above). Timed runs at 10 iterations and at that count; beyond
  ``--max-timed`` iterations the time is the straight line through timed runs at 10 and
  ``--max-timed`` iterations (marked ≈). Ratios are to rl-accel and to deconwolf in the same run.
- *per iteration*: the slope of those timed runs; deconwolf's own figure from its ``--tsv``.
  Our RL iteration against the FFT floor (``bench_classical.fft_floor``: 2 rfftn+irfftn pairs).
- *peak memory*: Python tools: the process's ``VmHWM`` during the call (interpreter, imports and
  data included) and its growth during the call (``VmHWM`` after − ``VmRSS`` before, reset by
  ``/proc/self/clear_refs``; the tool's modules are imported before); deconwolf: the ``dw``
  process's own ``ru_maxrss`` (started through a small ``python -S`` spawner, because a child's
  ``ru_maxrss`` starts at its parent's size) for both. In MiB and in input float32 volumes.
- *flux*: sum(output) / sum(input − background).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = Path(os.environ.get("NEURODECON_SHARED_DATA", SHARED / "data"))
TARBALL = SHARED / "peers" / "deconwolf-0d6f6c7.tar.gz"
CACHE = Path.home() / ".cache" / "neurodecon" / "peers"
OUT = HERE / "_out" / "peers.json"
DEB_PACKAGES = ["cmake", "gcc", "pkg-config", "libfftw3-dev", "libgsl-dev", "libtiff-dev"]
DEB_PACKAGES += ["libpng-dev"]
TOOLS = ["rl-accel", "rl", "deconwolf", "redlionfish", "skimage"]
LABEL = {
    "rl-accel": "neurodecon rl-accel",
    "rl": "neurodecon rl (plain)",
    "deconwolf": "deconwolf 0.4.7 shb",
    "redlionfish": "RedLionfish 0.10 CPU",
    "skimage": "scikit-image richardson_lucy",
}
HANDLING = {
    "rl-accel": "b in model; unknown boundary",
    "rl": "b in model; unknown boundary",
    "deconwolf": "--bg b (floor), b subtracted; pad + edge weights (--bq 2)",
    "redlionfish": "max(y−b,0); circular",
    "skimage": "max(y−b,0); zero outside (same)",
}
DROP_DB = 3.0  # a quality curve stops once it is this far below its best (after 20 iterations)
MAX_ITER = {"rl": 200, "rl-accel": 120, "deconwolf": 120, "redlionfish": 200, "skimage": 200}


def checkpoints(n: int) -> list[int]:
    return sorted({k for k in range(1, n + 1) if k <= 60 or k % 5 == 0} | {n})


# -- deconwolf build ------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _missing_debs() -> list[str]:
    if shutil.which("dpkg-query") is None:  # not Debian: let CMake find what it finds
        return []
    missing = []
    for pkg in DEB_PACKAGES:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        )
        if "install ok installed" not in r.stdout:
            missing.append(pkg)
    return missing


def _dw_env(dw_dir: Path, threads: int) -> dict:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{dw_dir}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
    env["HOME"] = str(dw_dir / "home")  # FFTW wisdom: $HOME/.config/deconwolf/
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def build_deconwolf(tarball: Path, native: bool, threads: int) -> tuple[Path | None, dict]:
    """Build ``dw`` from the tarball (or reuse the cached build): (folder with dw, info)."""
    info: dict = {"tarball": str(tarball), "native": native}
    if not tarball.is_file():
        return None, {**info, "error": f"tarball not found: {tarball}"}
    sha = _sha256(tarball)
    info["sha256"] = sha
    cmake_flags = ["-DENABLE_GPU=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    if native:
        cmake_flags.append("-DENABLE_NATIVE_OPTIMIZATION=ON")
    info["cmake_flags"] = cmake_flags
    dest = CACHE / f"deconwolf-{sha[:16]}{'-native' if native else ''}"
    (dest / "home" / ".config" / "deconwolf").mkdir(parents=True, exist_ok=True)
    dw = dest / "dw"
    if dw.is_file():
        r = subprocess.run([dw, "--version"], capture_output=True, text=True, env=_dw_env(dest, 1))
        if r.returncode == 0:
            info.update(cached=str(dest), version=r.stdout.strip().splitlines()[0])
            return dest, info
    try:
        missing = _missing_debs()
        if missing:
            if os.geteuid() != 0:
                raise RuntimeError(f"missing Debian packages (not root): {' '.join(missing)}")
            print(f"deconwolf build: apt-get install {' '.join(missing)}", flush=True)
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", *missing],
                check=True,
                capture_output=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            info["apt_installed"] = missing
        with tempfile.TemporaryDirectory(prefix="deconwolf-build-") as tmp:
            with tarfile.open(tarball) as tf:
                try:
                    tf.extractall(tmp, filter="data")
                except TypeError:  # Python without extraction filters (< 3.10.12 / 3.11.4)
                    tf.extractall(tmp)
            src = next(Path(tmp).glob("*/CMakeLists.txt")).parent
            build = src / "builddir"
            t0 = time.perf_counter()
            for cmd in (
                ["cmake", "-S", str(src), "-B", str(build), *cmake_flags],
                ["cmake", "--build", str(build), "--target", "dw", "-j", str(threads)],
            ):
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
                    raise RuntimeError(f"{' '.join(cmd[:2])} failed: {' | '.join(tail)}")
            info["build_s"] = time.perf_counter() - t0
            shutil.copy2((build / "dw").resolve(), dw)
            for lib in build.rglob("lib*.so"):  # libkdtree.so, libtrafo.so (dw's own helpers)
                shutil.copy2(lib, dest / lib.name)
        r = subprocess.run([dw, "--version"], capture_output=True, text=True, env=_dw_env(dest, 1))
        if r.returncode != 0:
            raise RuntimeError(f"built dw does not run: {r.stderr.strip()[:200]}")
        info.update(built=str(dest), version=r.stdout.strip().splitlines()[0])
        print(f"deconwolf built in {info['build_s']:.0f} s, cached at {dest}", flush=True)
        return dest, info
    except Exception as e:  # noqa: BLE001  (reported in the table instead)
        shutil.rmtree(dest, ignore_errors=True)
        return None, {**info, "error": f"{type(e).__name__}: {e}"}


# -- cases ---------------------------------------------------------------------------------------
def prepare_psf(psf: np.ndarray) -> np.ndarray:
    """The one PSF every tool sees: ≥ 0, sum 1, trimmed as our engine trims, peak at n // 2."""
    from neurodecon.classical._inputs import _trim_psf

    p = np.clip(np.asarray(psf, np.float64), 0, None)
    p = _trim_psf(p / p.sum())
    p = p / p.sum()
    if any(n % 2 == 0 for n in p.shape):
        raise ValueError(f"PSF shape {p.shape} must be odd for every tool")
    if np.unravel_index(np.argmax(p), p.shape) != tuple(n // 2 for n in p.shape):
        raise ValueError("PSF peak is not at n // 2")
    return p.astype(np.float32)


def make_cases(names: list[str], quick: bool) -> list[dict]:
    cases = []
    for name in names:
        if name == "anchor":
            from bench_classical import BACKGROUND, anchor_case

            shape = (32, 128, 128) if quick else (64, 256, 256)
            truth, image, psf = anchor_case(shape)
            cases.append(
                dict(
                    name="anchor",
                    title=f"anchor: beads + tubes {'×'.join(map(str, shape))}, Gaussian PSF "
                    "σ 1.5/1.5/4 px, 1000 photons, background 5, Poisson",
                    image=image,
                    psf=prepare_psf(psf),
                    truth=truth,
                    background=float(BACKGROUND),
                )
            )
        elif name == "real":
            import tifffile

            import neurodecon as nd
            from neurodecon.classical import estimate_background

            path = DATA / "deconwolf" / "dapi_001.tif"
            if not path.is_file():
                print(f"real case skipped: {path} not found")
                continue
            image = tifffile.imread(path).astype(np.float32)
            if quick:
                image = np.ascontiguousarray(image[:, 50:146, 2:98])
            psf_shape = (39, 33, 33) if quick else (79, 65, 65)
            psf = nd.make_psf(
                "widefield",
                shape=psf_shape,
                voxel_size_um=(0.3, 0.13, 0.13),
                na=1.45,
                wavelength_um=0.461,
                immersion_index=1.512,
            )
            cases.append(
                dict(
                    name="real",
                    title=f"real: deconwolf demo dapi_001.tif {'×'.join(map(str, image.shape))} "
                    f"(widefield, no truth), Born–Wolf PSF {'×'.join(map(str, psf_shape))} "
                    "(NA 1.45, 461 nm, n 1.512, 130/300 nm)",
                    image=image,
                    psf=prepare_psf(psf),
                    truth=None,
                    background=float(estimate_background(image)),
                )
            )
        else:
            raise SystemExit(f"unknown case {name!r} (anchor, real)")
    return cases


def save_case(case: dict, folder: Path) -> None:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "image.npy", case["image"])
    np.save(folder / "psf.npy", case["psf"])
    if case["truth"] is not None:
        np.save(folder / "truth.npy", case["truth"])
    tifffile.imwrite(folder / "image.tif", case["image"].astype(np.float32))
    tifffile.imwrite(folder / "psf.tif", case["psf"].astype(np.float32))
    (folder / "meta.json").write_text(json.dumps({"background": case["background"]}))


# -- child side: one Python tool, one measurement ------------------------------------------------
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(field)


def _scorer(folder: Path, interior: bool = False):
    """score(estimate) in dB: PSNR against the truth, or agreement with our RL@200.

    ``interior``: PSNR against the truth without a border of half the PSF (at most a quarter of
    the axis): what is left when edge handling is taken out (None without a truth).
    """
    from neurodecon.metrics import psnr

    truth = (folder / "truth.npy").is_file()
    ref_path = folder / ("truth.npy" if truth else "reference.npy")
    ref = np.load(ref_path) if ref_path.is_file() else None
    if ref is None or (interior and not truth):
        return None
    if interior:
        psf_shape = np.load(folder / "psf.npy").shape
        sl = tuple(
            slice(min(m // 2, n // 4), n - min(m // 2, n // 4))
            for m, n in zip(psf_shape, ref.shape, strict=True)
        )
        inner = np.ascontiguousarray(ref[sl])
        return lambda x: psnr(np.asarray(x, np.float32)[sl], inner)
    return lambda x: psnr(np.asarray(x, np.float32), ref)


def _run_python_tool(tool, image, psf, bg, n, threads, observe=None):
    """Run ``tool`` for ``n`` iterations; ``observe(k, estimate)`` sees the estimate after k."""
    import scipy.fft

    if tool in ("rl", "rl-accel"):
        import neurodecon as nd

        cb = None if observe is None else (lambda k, x: observe(k, x) and None)
        return nd.deconvolve(
            image, psf, method=tool, iterations=n, background=bg, device="cpu", callback=cb
        )
    y = np.clip(image - np.float32(bg), 0, None)
    if tool == "skimage":
        import skimage.restoration.deconvolution as skd

        real = skd.convolve
        calls = [0]

        def convolve(a, *args, **kw):  # call 2k convolves the estimate after k iterations
            if calls[0] % 2 == 0:
                observe(calls[0] // 2, a)
            calls[0] += 1
            return real(a, *args, **kw)

        if observe is not None:
            skd.convolve = convolve
        try:
            with scipy.fft.set_workers(threads):
                out = skd.richardson_lucy(y, psf, num_iter=n, clip=False)
        finally:
            skd.convolve = real
        return out
    if tool == "redlionfish":
        import RedLionfishDeconv as rlf

        real_rfftn = scipy.fft.rfftn
        calls = [0]
        nx = y.shape[-1]

        def rfftn(a, *args, **kw):  # calls 0-1: the PSF; 2 + 2k: the estimate after k
            i = calls[0]
            if i >= 2 and i % 2 == 0:
                observe((i - 2) // 2, a[..., :nx])
            calls[0] += 1
            return real_rfftn(a, *args, **kw)

        if observe is not None:
            scipy.fft.rfftn = rfftn
        try:
            # its circular PSF placement puts the centre of an even-sized PSF at n / 2: an odd
            # one centred at n // 2 comes out shifted by +1 voxel per axis (tested with a
            # point), so it gets the same values with one zero plane in front of each axis
            psf_even = np.pad(psf, [(1, 0)] * psf.ndim)
            with scipy.fft.set_workers(threads):
                out = rlf.doRLDeconvolutionFromNpArrays(y, psf_even, niter=n, method="cpu")
        finally:
            scipy.fft.rfftn = real_rfftn
        if out is None:
            raise RuntimeError("RedLionfish returned None (see its log)")
        return out[..., :nx]  # it pads an odd last axis by one zero column
    raise ValueError(tool)


class _CurveDone(BaseException):  # passes through the peers' `except Exception`
    pass


def child(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    folder = Path(spec["folder"])
    image = np.load(folder / "image.npy")
    psf = np.load(folder / "psf.npy")
    bg = json.loads((folder / "meta.json").read_text())["background"]
    tool, n, mode = spec["tool"], spec["n"], spec["mode"]
    if mode == "floor":
        return floor_child(image, psf, bg)
    if mode == "curve":
        score, inner = _scorer(folder), _scorer(folder, interior=True)
        keep = set(checkpoints(n))
        curve, curve_in, snaps = [], [], {}

        def observe(k, x):
            if k in keep:
                if score is None:  # real case, RL reference run: score at the end
                    snaps[k] = np.array(x, np.float32)
                else:
                    curve.append((k, score(x)))
                if inner is not None:
                    curve_in.append((k, inner(x)))
                if curve and k >= 20 and curve[-1][1] < max(c[1] for c in curve) - DROP_DB:
                    raise _CurveDone  # well past its best: the rest of the curve is not needed

        try:
            out = _run_python_tool(tool, image, psf, bg, n, spec["threads"], observe)
        except _CurveDone:
            return {"curve": curve, "curve_interior": curve_in, "stopped_at": curve[-1][0]}
        if spec.get("save_reference"):
            np.save(folder / "reference.npy", np.asarray(out, np.float32))
            score = _scorer(folder)
            curve = [(k, score(x)) for k, x in sorted(snaps.items()) if k != n]
        if n not in {k for k, _ in curve}:
            curve.append((n, score(out)))
        if inner is not None and n not in {k for k, _ in curve_in}:
            curve_in.append((n, inner(out)))
        return {"curve": sorted(curve), "curve_interior": sorted(curve_in)}
    # timed: the call alone, in a fresh process, no warm-up (modules imported before the baseline)
    _preload(tool)
    Path("/proc/self/clear_refs").write_text("5")
    base = _rss_kib("VmRSS:")
    t0 = time.perf_counter()
    out = _run_python_tool(tool, image, psf, bg, n, spec["threads"])
    elapsed = time.perf_counter() - t0
    hwm = _rss_kib("VmHWM:")
    growth = (hwm - base) * 1024
    score = _scorer(folder)
    return {
        "time_s": elapsed,
        "growth_bytes": growth,
        "call_peak_rss_bytes": hwm * 1024,
        "flux": _flux(out, image, bg),
        "score": None if score is None else score(out),
    }


def _preload(tool: str) -> None:
    """Import what the tool's call would import lazily, so that memory growth is the call's."""
    import scipy.fft  # noqa: F401

    if tool in ("rl", "rl-accel"):
        import neurodecon.classical  # noqa: F401
        import neurodecon.psf  # noqa: F401
    elif tool == "skimage":
        import scipy.signal  # noqa: F401
        import skimage.restoration  # noqa: F401
    elif tool == "redlionfish":
        import RedLionfishDeconv.RLDeconv3DScipy  # noqa: F401


def _flux(out, image, bg) -> float:
    return float(np.sum(out, dtype=np.float64) / np.sum(image - np.float32(bg), dtype=np.float64))


def floor_child(image, psf, bg) -> dict:
    """Our RL / rl-accel iteration against the FFT floor (bench_classical's measurement)."""
    from bench_classical import _iteration_times, fft_floor

    from neurodecon.classical import Deconvolver

    dec = Deconvolver(psf, image.shape, method="rl", device="cpu")
    acc = Deconvolver(psf, image.shape, method="rl-accel", device="cpu")
    padded = dec.op.shape
    fft, rl, ac = {}, [], []
    for _ in range(3):  # interleaved, so that load changes hit every measurement alike
        for name, t in fft_floor(padded).items():
            fft.setdefault(name, []).append(t)
        rl.append(_iteration_times(dec, image, 12))
        ac.append(_iteration_times(acc, image, 12))
    floors = {
        k: (min(v[0] for v in ts), float(np.median([v[1] for v in ts]))) for k, ts in fft.items()
    }
    fastest = min(floors, key=lambda k: floors[k][0])
    floor = (2 * floors[fastest][0], 2 * floors[fastest][1])
    rl_it = (min(r[0] for r in rl), float(np.median([r[1] for r in rl])))
    ac_it = (min(r[0] for r in ac), float(np.median([r[1] for r in ac])))
    return {
        "padded": list(padded),
        "fft_pairs": floors,
        "floor_library": fastest,
        "floor_s": floor,
        "rl_iter_s": rl_it,
        "accel_iter_s": ac_it,
        "rl_vs_floor_min": rl_it[0] / floor[0],
        "rl_vs_floor_median": rl_it[1] / floor[1],
    }


# -- parent side ---------------------------------------------------------------------------------
def _child_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


# A forked child's peak RSS (ru_maxrss) starts at its parent's resident size, and exec keeps it:
# this small interpreter (python -S, a few MiB) starts the measured program and reports the
# program's own ru_maxrss and wall time, so the benchmark's large parent never counts.
_SPAWNER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {wall} {usage.ru_maxrss}")
"""


def _spawn(cmd, env, cwd=None):
    """Run ``cmd``: (returncode, stdout, stderr, wall s, peak RSS bytes of that process)."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        with tempfile.NamedTemporaryFile("r", suffix=".rusage") as fr:
            wrapper = [sys.executable, "-S", "-c", _SPAWNER, fr.name]
            subprocess.run(wrapper + list(cmd), stdout=fo, stderr=fe, env=env, cwd=cwd)
            rc, wall, maxrss = fr.read().split()
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    return int(rc), out, err, float(wall), int(maxrss) * 1024


def run_child(spec: dict) -> dict:
    """One measurement in a fresh Python process: its result plus the process's peak RSS."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    rc, out, err, wall, peak = _spawn(cmd, _child_env(spec["threads"]))
    if rc != 0:
        raise RuntimeError(" | ".join(err.strip().splitlines()[-3:]) or f"exit {rc}")
    res = json.loads(out.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    res["peak_rss_bytes"] = peak
    return res


def run_deconwolf(dw_dir: Path, folder: Path, n: int, threads: int, mode: str) -> dict:
    import tifffile

    bg = json.loads((folder / "meta.json").read_text())["background"]
    work = Path(tempfile.mkdtemp(prefix="dw-", dir=folder))
    out = work / "out.tif"
    cmd = [str(dw_dir / "dw"), "--iter", str(n), "--threads", str(threads), "--bg", f"{bg:.6g}"]
    # --offset 0: its default adds 5 to the image and (0.4.7, untiled) leaves it in the result
    cmd += ["--offset", "0", "--float", "--overwrite", "--out", str(out)]
    if mode == "curve":
        cmd += ["--niterdump", "1"]
    if mode == "tsv":
        cmd += ["--tsv", str(work / "iter.tsv")]
    cmd += [str(folder / "image.tif"), str(folder / "psf.tif")]
    try:
        rc, text, err, wall, peak = _spawn(cmd, _dw_env(dw_dir, threads), cwd=work)
        text += err
        if mode == "curve" and not out.is_file():  # with --niterdump the result is itd<n>
            out = work / f"itd{n:05d}.tif"
        if rc != 0 or not out.is_file():
            raise RuntimeError(f"dw exit {rc}: {' | '.join(text.strip().splitlines()[-3:])}")
        image = np.load(folder / "image.npy")
        x = tifffile.imread(out).astype(np.float32) - np.float32(bg)
        res = {"time_s": wall, "peak_rss_bytes": peak, "flux": _flux(x, image, bg)}
        res["growth_bytes"] = peak
        score = _scorer(folder)
        res["score"] = None if score is None else score(x)
        if mode == "curve":
            keep = set(checkpoints(n))
            inner = _scorer(folder, interior=True)
            curve, curve_in = [], []
            for f in sorted(work.glob("itd*.tif")):
                k = int(f.stem[3:])  # itdK: the estimate after K iterations
                if k in keep and 0 < k < n:
                    xk = tifffile.imread(f).astype(np.float32) - np.float32(bg)
                    curve.append((k, score(xk)))
                    if inner is not None:
                        curve_in.append((k, inner(xk)))
            curve.append((n, res["score"]))
            if inner is not None:
                curve_in.append((n, inner(x)))
            res["curve"], res["curve_interior"] = sorted(curve), sorted(curve_in)
        if mode == "tsv":
            rows = [ln.split("\t") for ln in (work / "iter.tsv").read_text().splitlines()[1:]]
            t = np.array([float(r[1]) for r in rows if len(r) > 1])
            res["own_iter_s"] = float(np.median(np.diff(t))) if t.size > 2 else None
        log = work / "out.tif.log.txt"
        if log.is_file():
            took = [ln for ln in log.read_text().splitlines() if ln.startswith("Took:")]
            res["own_total_s"] = float(took[-1].split()[1]) if took else None
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(tool, folder, n, threads, mode, dw_dir=None, save_reference=False) -> dict:
    if tool == "deconwolf":
        return run_deconwolf(dw_dir, folder, n, threads, mode)
    spec = dict(tool=tool, folder=str(folder), n=n, threads=threads, mode=mode)
    if save_reference:
        spec["save_reference"] = True
    return run_child(spec)


def first_hit(curve, target):
    return next((k for k, s in curve if s >= target - 1e-9), None)


def bench_case(case: dict, args, dw_dir: Path | None, dw_info: dict, tmp: Path) -> dict:
    folder = tmp / case["name"]
    save_case(case, folder)
    has_truth = case["truth"] is not None
    threads = args.threads
    print(f"\n### {case['title']}", flush=True)
    res: dict = {"title": case["title"], "shape": list(case["image"].shape)}
    res["psf_shape"] = list(case["psf"].shape)
    res["background"] = case["background"]
    res["input_volume_bytes"] = int(case["image"].size * 4)
    res["floor"] = run_child(
        dict(tool="rl", folder=str(folder), n=0, threads=threads, mode="floor")
    )
    fl = res["floor"]
    print(
        f"FFT floor {fl['floor_s'][0] * 1e3:.1f} ms ({fl['floor_library']}); RL iteration "
        f"{fl['rl_iter_s'][0] * 1e3:.1f} ms = {fl['rl_vs_floor_min']:.2f}× floor (min)",
        flush=True,
    )
    rows: dict = {}
    # 1) the target: plain RL@200 (its curve; on the real stack it also makes the reference)
    rl = measure("rl", folder, 200, threads, "curve", save_reference=not has_truth)
    target = dict(rl["curve"])[200] if has_truth else args.agreement
    res["target"] = target
    res["has_truth"] = has_truth
    rows["rl"] = {"curve": rl["curve"], "curve_interior": rl["curve_interior"]}
    for tool in TOOLS:
        if tool in args.skip:
            rows[tool] = {"skipped": "--skip"}
            continue
        if tool == "deconwolf" and dw_dir is None:
            rows[tool] = {"skipped": f"build failed: {dw_info.get('error')}"}
            continue
        if tool == "redlionfish":
            try:
                import RedLionfishDeconv  # noqa: F401
            except ImportError:
                rows[tool] = {"skipped": "not installed (pip install redlionfish==0.10)"}
                continue
        row = rows.setdefault(tool, {})
        try:
            if tool == "deconwolf":  # untimed: FFTW_MEASURE planning, kept as wisdom
                t0 = time.perf_counter()
                run_deconwolf(dw_dir, folder, 1, threads, "plain")
                row["first_run_planning_s"] = time.perf_counter() - t0
            c: dict = {}
            if "curve" not in row:
                c = measure(tool, folder, MAX_ITER[tool], threads, "curve", dw_dir)
                row["curve"], row["curve_interior"] = c["curve"], c["curve_interior"]
            curve = row["curve"]
            if row["curve_interior"]:
                row["best_interior"] = max(row["curve_interior"], key=lambda ks: ks[1])
            finite = [(k, s) for k, s in curve if math.isfinite(s)] or curve
            best_k, best = max(finite, key=lambda ks: ks[1])
            hit = first_hit(curve, target)
            row["stopped_at"] = c.get("stopped_at")
            row.update(best=best, best_iter=best_k, hit_iter=hit)
            k_time = hit if hit is not None else None
            counts = {10}
            if k_time is not None:
                counts.add(min(k_time, args.max_timed))
            if k_time is None or k_time > args.max_timed or len(counts) == 1:
                slope_n = args.max_timed if (k_time or 0) > args.max_timed else 30
                counts.add(slope_n)  # a second count: the time per iteration
            counts = sorted(counts)
            timed = {}
            for n in counts:
                mode = "tsv" if (tool == "deconwolf" and n == 10) else "timed"
                reps = args.repeat if (tool in ("rl-accel", "deconwolf") and n == k_time) else 1
                runs = [measure(tool, folder, n, threads, mode, dw_dir) for _ in range(reps)]
                timed[n] = min(runs, key=lambda r: r["time_s"])
            row["timed"] = {str(n): r for n, r in timed.items()}
            (n1, r1), (n2, r2) = sorted(timed.items())[0], sorted(timed.items())[-1]
            per_it = (r2["time_s"] - r1["time_s"]) / (n2 - n1) if n2 > n1 else None
            row["per_iter_s"] = per_it
            if k_time is None:
                row["time_to_target_s"] = None
            elif k_time in timed:
                row["time_to_target_s"] = timed[k_time]["time_s"]
                row["extrapolated"] = False
            else:
                row["time_to_target_s"] = r1["time_s"] + (k_time - n1) * per_it
                row["extrapolated"] = True
            last = timed[max(timed)]
            row["flux"] = last["flux"]
            row["peak_rss_bytes"] = max(
                r.get("call_peak_rss_bytes", r["peak_rss_bytes"]) for r in timed.values()
            )
            row["growth_bytes"] = max(r["growth_bytes"] for r in timed.values())
            if tool == "deconwolf":
                row["own_iter_s"] = timed[10].get("own_iter_s")
            t = row["time_to_target_s"]
            print(
                f"{tool:12s} hit {hit} it, "
                f"{'–' if t is None else f'{t:.2f} s'}, best {_f(best)} dB @ {best_k}, "
                f"per it {per_it * 1e3 if per_it else float('nan'):.0f} ms",
                flush=True,
            )
        except Exception as e:  # noqa: BLE001  (a failing peer is a line in the table)
            row.clear()
            row["skipped"] = f"failed: {type(e).__name__}: {e}"[:300]
            print(f"{tool}: {row['skipped']}", flush=True)
    res["rows"] = rows
    acc = rows.get("rl-accel", {}).get("time_to_target_s")
    dw = rows.get("deconwolf", {}).get("time_to_target_s")
    res["deconwolf_over_accel"] = dw / acc if (acc and dw) else None
    return res


# -- report ---------------------------------------------------------------------------------------
def _f(x, fmt="{:.2f}", none="–"):
    return none if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def table(res: dict, threads: int) -> str:
    has_truth = res["has_truth"]
    rows = res["rows"]
    acc = rows.get("rl-accel", {}).get("time_to_target_s")
    dw = rows.get("deconwolf", {}).get("time_to_target_s")
    vol = res["input_volume_bytes"]
    what = (
        f"time to plain-RL@200 PSNR ({res['target']:.2f} dB)"
        if has_truth
        else f"time to within {res['target']:g} dB of our RL@200"
    )
    best_what = "best PSNR (dB) @ it" if has_truth else "best agreement (dB) @ it"
    lines = [
        f"**{res['title']}**; PSF {'×'.join(map(str, res['psf_shape']))} (trimmed), "
        f"background {res['background']:.4g}, {threads} threads for every tool.",
        "",
        f"| tool | background; boundary | iterations | {what} | × rl-accel | × deconwolf "
        f"| per iteration | {best_what} "
        "| peak RSS | call memory (× input) | flux out/in |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for tool in TOOLS:
        row = rows.get(tool, {})
        if "skipped" in row or "timed" not in row:
            why = row.get("skipped", "not run")
            lines.append(f"| {LABEL[tool]} | {HANDLING[tool]} | {why} |" + " |" * 8)
            continue
        t = row["time_to_target_s"]
        approx = "≈ " if row.get("extrapolated") else ""
        hit = row["hit_iter"]
        its = "not reached" if hit is None else str(hit)
        if hit is None and row.get("stopped_at"):
            its += f" (curve stopped at {row['stopped_at']}, {DROP_DB:g} dB below its best)"
        elif hit is None:
            its += f" in {MAX_ITER[tool]}"
        per = f"{row['per_iter_s'] * 1e3:.0f} ms" if row["per_iter_s"] else "–"
        interior = ""
        if row.get("best_interior"):
            interior = f" (interior {row['best_interior'][1]:.2f} @ {row['best_interior'][0]})"
        if tool == "deconwolf" and row.get("own_iter_s"):
            per += f" (own: {row['own_iter_s'] * 1e3:.0f} ms)"
        lines.append(
            f"| {LABEL[tool]} | {HANDLING[tool]} | {its} | {approx}{_f(t, '{:.2f} s')} "
            f"| {_f(t / acc if (t and acc) else None)} | {_f(t / dw if (t and dw) else None)} "
            f"| {per} | {_f(row['best'])} @ {row['best_iter']}{interior} "
            f"| {row['peak_rss_bytes'] / 2**20:.0f} MiB "
            f"| {row['growth_bytes'] / 2**20:.0f} MiB ({row['growth_bytes'] / vol:.1f}) "
            f"| {row['flux']:.3f} |"
        )
    fl = res["floor"]
    lines += [
        "",
        f"FFT floor on our padded grid {'×'.join(map(str, fl['padded']))} (2 rfftn+irfftn pairs, "
        f"{fl['floor_library']}): {fl['floor_s'][0] * 1e3:.1f} ms min / "
        f"{fl['floor_s'][1] * 1e3:.1f} ms median; our RL iteration "
        f"{fl['rl_iter_s'][0] * 1e3:.1f} / {fl['rl_iter_s'][1] * 1e3:.1f} ms = "
        f"**{fl['rl_vs_floor_min']:.2f}× / {fl['rl_vs_floor_median']:.2f}× the floor** "
        f"(target ≤ 1.3×); rl-accel iteration {fl['accel_iter_s'][0] * 1e3:.1f} / "
        f"{fl['accel_iter_s'][1] * 1e3:.1f} ms (min / median).",
    ]
    if has_truth and res.get("deconwolf_over_accel"):
        r = res["deconwolf_over_accel"]
        lines.append(
            f"deconwolf time / rl-accel time to plain-RL@200 quality: **{r:.2f}×** "
            f"(target ≥ 1.7×: {'met' if r >= 1.7 else 'NOT met'})."
        )
    dwrow = rows.get("deconwolf", {})
    if dwrow.get("first_run_planning_s"):
        lines.append(
            f"deconwolf's untimed first run (1 iteration, FFTW_MEASURE planning saved as wisdom): "
            f"{dwrow['first_run_planning_s']:.1f} s."
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=["anchor", "real"], help="anchor and/or real")
    ap.add_argument("--threads", type=int, default=2, help="threads of every tool (default 2)")
    ap.add_argument("--quick", action="store_true", help="small volumes (smoke run)")
    ap.add_argument("--skip", nargs="*", default=[], choices=TOOLS, help="tools to leave out")
    ap.add_argument(
        "--max-timed",
        type=int,
        default=60,
        help="longest timed run; beyond it the time to target is extrapolated (default 60)",
    )
    ap.add_argument(
        "--agreement",
        type=float,
        default=35.0,
        help="real stack (no truth): agreement with our RL@200 (PSNR, dB) that counts as "
        "reaching it (default 35)",
    )
    ap.add_argument(
        "--repeat", type=int, default=2, help="timed runs of rl-accel and deconwolf at the target"
    )
    ap.add_argument("--deconwolf-tarball", type=Path, default=TARBALL)
    ap.add_argument(
        "--deconwolf-native", action="store_true", help="build deconwolf with -march=native"
    )
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON results (default {OUT})")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    t_start = time.perf_counter()
    dw_dir, dw_info = (None, {"error": "--skip"})
    if "deconwolf" not in args.skip:
        dw_dir, dw_info = build_deconwolf(
            args.deconwolf_tarball, args.deconwolf_native, args.threads
        )
        if dw_dir is None:
            print(f"deconwolf: {dw_info['error']}", flush=True)
    results = {
        "command": " ".join(["python", "benchmarks/bench_peers.py", *(argv or sys.argv[1:])]),
        "threads": args.threads,
        "quick": args.quick,
        "deconwolf": dw_info,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "load_average_start": os.getloadavg(),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        for case in make_cases(args.cases, args.quick):
            results["cases"][case["name"]] = bench_case(case, args, dw_dir, dw_info, Path(tmp))
    results["load_average_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - t_start
    print("\n## Side by side with deconwolf, RedLionfish and scikit-image\n")
    print(f"`{results['command']}` (load average {results['load_average_start'][0]:.1f} at start)")
    for res in results["cases"].values():
        print()
        print(table(res, args.threads))
    print(f"\nwhole run {results['wall_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
