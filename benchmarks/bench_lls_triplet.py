"""Real lattice light-sheet triplet (pycudadecon 0.5.1 test data): our RL against cudaDecon's.

    python benchmarks/bench_lls_triplet.py [--data DIR] [--out benchmarks/_out/lls] [--threads 2]

The data ship in the ``pycudadecon==0.5.1`` sdist (MIT): ``tests/test_data/psf.tif`` (a measured
bead PSF, 61×128×128, camera offset ~142), ``im_deskewed.tif`` (88×320×481 sample, background 98)
and ``im_decon.tif`` (cudaDecon's 10-iteration RL, 84×320×480). The parameters are those of its
``tests/test_decon.py``: dz data 0.3 µm, dz PSF 0.1 µm, dx 0.1015 µm, background 98. When
``--data`` is not given, the sdist is downloaded once with
``pip download --no-deps --no-binary :all: pycudadecon==0.5.1`` into
``~/.cache/neurodecon/pycudadecon-0.5.1`` (nothing of it is committed here).

Prints a Markdown table: for each way of running our engine, Pearson correlation with cudaDecon's
result (on cudaDecon's 84×320×480 region), flux relative to it, the median lateral / axial FWHM of
the brightest small spots, the lateral decorrelation resolution, and the wall time. With ``--out``
writes a figure (xy and xz views: raw, cudaDecon, ours).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "neurodecon"
SDIST = "pycudadecon-0.5.1"
VOX = (0.3, 0.1015, 0.1015)
PSF_VOX = (0.1, 0.1015, 0.1015)
BACKGROUND = 98.0


def data_dir(given: str | None) -> Path:
    """Return the folder with psf.tif, im_deskewed.tif and im_decon.tif (download if needed)."""
    if given:
        return Path(given)
    target = CACHE / SDIST / "tests" / "test_data"
    if (target / "im_decon.tif").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / f"{SDIST}.tar.gz").is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*cmd, "pycudadecon==0.5.1", "-d", str(CACHE)], check=True)
    with tarfile.open(CACHE / f"{SDIST}.tar.gz") as tar:
        members = [m for m in tar.getmembers() if "/tests/test_data/" in m.name]
        tar.extractall(CACHE, members=members, filter="data")
    return target


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def spot_fwhm(volume: np.ndarray, centres: np.ndarray) -> tuple[float, float]:
    """Median lateral (x) and axial FWHM (µm) of the spots at ``centres``."""
    from neurodecon.metrics import line_profile_fwhm

    lat, ax = [], []
    for z, y, x in centres.astype(int):
        if 6 <= x < volume.shape[2] - 6 and 4 <= z < volume.shape[0] - 4:
            lat.append(line_profile_fwhm(volume[z, y, x - 6 : x + 7], VOX[2]))
            ax.append(line_profile_fwhm(volume[z - 4 : z + 5, y, x], VOX[0]))
    return float(np.nanmedian(lat)), float(np.nanmedian(ax))


def measure(name, out, ref, centres, seconds, iterations) -> dict:
    from neurodecon.metrics import decorrelation

    crop = out[: ref.shape[0], : ref.shape[1], : ref.shape[2]]
    lat, ax = spot_fwhm(crop, centres)
    dec = decorrelation(crop, voxel_size_um=VOX, plane="xy")
    return {
        "run": name,
        "iterations": iterations,
        "pearson": pearson(crop, ref),
        "flux": float(crop.sum() / ref.sum()),
        "fwhm_xy": lat,
        "fwhm_z": ax,
        "decorr_xy": float(np.nanmean(dec.resolution_um)),
        "seconds": seconds,
    }


RUNS = [
    # name, psf_background, method, iterations, initial, background_mode
    ("PSF as is (--psf-background none), RL 10", None, "rl", 10, "flat", "model"),
    ("default (PSF cleaned), RL 10", "auto", "rl", 10, "flat", "model"),
    ("RL 10, --initial data", "auto", "rl", 10, "data", "model"),
    ("RL 10, --initial data --background-mode subtract", "auto", "rl", 10, "data", "subtract"),
    ("RL 20, --initial data --background-mode subtract", "auto", "rl", 20, "data", "subtract"),
    (
        "rl-accel 10, --initial data --background-mode subtract",
        "auto",
        "rl-accel",
        10,
        "data",
        "subtract",
    ),
    ("RL auto (default otherwise)", "auto", "rl", "auto", "flat", "model"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder with the three TIFFs (default: download)")
    ap.add_argument("--out", default=None, help="folder for the figure")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import tifffile
    import torch

    import neurodecon as nd
    from neurodecon.psf import resolve_psf
    from neurodecon.report import small_objects

    torch.set_num_threads(args.threads)
    d = data_dir(args.data)
    img = nd.read(d / "im_deskewed.tif", voxel_size_um=VOX)
    ref = tifffile.imread(d / "im_decon.tif").astype(np.float32)
    centres = small_objects(ref, VOX, max_objects=20)
    raw = np.clip(img.data.astype(np.float32) - BACKGROUND, 0, None)  # flux above background
    rows = [measure("raw data (minus background)", raw, ref, centres, 0.0, "-")]
    rows.append(measure("cudaDecon (reference)", ref, ref, centres, float("nan"), 10))
    psfs: dict = {}
    results = {}
    for name, psf_bg, method, its, init, mode in RUNS:
        if psf_bg not in psfs:
            psfs[psf_bg] = resolve_psf(
                image_shape=img.spatial_shape,
                image_voxel_size_um=VOX,
                psf=d / "psf.tif",
                psf_voxel_size_um=PSF_VOX,
                psf_background=psf_bg,
            ).psf
        t0 = time.perf_counter()
        res = nd.deconvolve(
            img.data,
            psfs[psf_bg],
            method=method,
            iterations=its,
            background=BACKGROUND,
            initial=init,
            background_mode=mode,
            device="cpu",
            return_result=True,
        )
        seconds = time.perf_counter() - t0
        rows.append(measure(name, res.data, ref, centres, seconds, res.iterations))
        results[name] = res.data
        print(f"done: {name} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    print(f"\nPSF as is: sum of its offset = {offset_share(d):.1%} of the file's sum\n")
    print(
        "| run | iterations | Pearson vs cudaDecon | flux vs cudaDecon | spot FWHM xy / z (µm) "
        "| decorrelation xy (µm) | time (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['run']} | {r['iterations']} | {r['pearson']:.3f} | {r['flux']:.3f} | "
            f"{r['fwhm_xy']:.3f} / {r['fwhm_z']:.3f} | {r['decorr_xy']:.3f} | "
            f"{r['seconds']:.1f} |"
        )
    if args.out:
        figure(img.data, ref, results, Path(args.out))


def offset_share(d: Path) -> float:
    import tifffile

    from neurodecon.psf import inspect_floor

    p = tifffile.imread(d / "psf.tif").astype(np.float64)
    rep = inspect_floor(p)
    return rep.floor_fraction


def figure(raw: np.ndarray, ref: np.ndarray, results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    shown = {"raw": raw, "cudaDecon 10": ref}
    for key in (
        "PSF as is (--psf-background none), RL 10",
        "default (PSF cleaned), RL 10",
        "RL 20, --initial data --background-mode subtract",
    ):
        shown[key.split(",")[0] if "as is" in key else key] = results[key]
    z, y = ref.shape[0] // 2, ref.shape[1] // 2
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown), 4.6))
    for col, (name, vol) in enumerate(shown.items()):
        v = vol[: ref.shape[0], : ref.shape[1], : ref.shape[2]]
        hi = np.percentile(v, 99.9)
        axes[0, col].imshow(v[z], cmap="gray", vmin=np.percentile(v, 1), vmax=hi)
        axes[1, col].imshow(
            v[:, y], cmap="gray", vmin=np.percentile(v, 1), vmax=hi, aspect=VOX[0] / VOX[2]
        )
        axes[0, col].set_title(name, fontsize=8)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("xy")
    axes[1, 0].set_ylabel("xz")
    fig.tight_layout()
    fig.savefig(out / "lls_triplet.png", dpi=110)
    print(f"\nfigure: {out / 'lls_triplet.png'}")


if __name__ == "__main__":
    main()
