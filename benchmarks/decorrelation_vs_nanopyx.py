"""Cross-check of NeuroDecon's decorrelation analysis against an independent implementation (2D).

NanoPyx (``nanopyx.methods.squirrel.resolution.calculate_decorr_analysis``, a port of the
ImDecorr plugin) is not a NeuroDecon dependency: install it in a separate environment
(``python -m venv /tmp/nx && /tmp/nx/bin/pip install nanopyx``) and pass that interpreter with
``--nanopyx-python``. Images: XY planes of the sdeconv pollen volume, its published blurred + noisy
observation, Gaussian-blurred copies with added noise, and band-limited noise with a known cut-off.

Usage::

    python benchmarks/decorrelation_vs_nanopyx.py --nanopyx-python /tmp/nx/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from neurodecon.metrics import decorrelation

_NANOPYX = """
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
from nanopyx.methods.squirrel.resolution import calculate_decorr_analysis
d = np.load(sys.argv[1])
print(json.dumps({k: float(calculate_decorr_analysis(d[k].astype(np.float32))) for k in d.files}))
"""


def band_limited(shape, kc, rng):
    grids = np.meshgrid(*[2 * np.fft.fftfreq(n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    s = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * (r < kc)))
    return (s / s.std()).astype(np.float32)


def images(data: Path) -> dict[str, tuple[np.ndarray, float | None]]:
    import tifffile

    gt = tifffile.imread(data / "sdeconv" / "pollen.tif").astype(np.float32)
    obs = tifffile.imread(data / "sdeconv" / "pollen_poisson_noise_blurred.tif").astype(np.float32)
    rng = np.random.default_rng(0)
    out: dict[str, tuple[np.ndarray, float | None]] = {}
    blurred = {s: ndi.gaussian_filter(gt, s) for s in (1.0, 2.0, 3.0)}
    for z in (12, 16, 20):
        out[f"pollen z{z} (noise-free)"] = (gt[z], None)
        out[f"observation z{z}"] = (obs[z], None)
        for s, b in blurred.items():
            noise = rng.normal(0, 200, b.shape[1:]).astype(np.float32)
            out[f"pollen ⊛ σ={s:g} px + noise z{z}"] = (b[z] + noise, None)
    for kc in (0.2, 0.35, 0.5):
        noise = 0.5 * rng.standard_normal((256, 256)).astype(np.float32)
        out[f"band-limited k_c={kc} + noise"] = (band_limited((256, 256), kc, rng) + noise, kc)
    return out


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data")
    ap.add_argument(
        "--nanopyx-python",
        default=sys.executable,
        help="interpreter that has nanopyx installed (default: this one)",
    )
    args = ap.parse_args()
    imgs = images(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "imgs.npz"
        np.savez(npz, **{f"i{n}": v[0] for n, v in enumerate(imgs.values())})
        proc = subprocess.run(
            [args.nanopyx_python, "-c", _NANOPYX, str(npz)],
            capture_output=True,
            text=True,
            check=True,
        )
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        "| image (256×256, pixels) | known k_c | NeuroDecon k_c | NanoPyx k_c | "
        "NeuroDecon res. px | NanoPyx res. px | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for n, (name, (img, known)) in enumerate(imgs.items()):
        ours = decorrelation(img).kc
        res_theirs = theirs[f"i{n}"]
        kc_theirs = 2.0 / res_theirs
        ratio = (2.0 / ours) / res_theirs
        ratios.append(ratio)
        print(
            f"| {name} | {known if known else '–'} | {ours:.3f} | {kc_theirs:.3f} | "
            f"{2 / ours:.2f} | {res_theirs:.2f} | {ratio:.3f} |"
        )
    print(f"\nmedian resolution ratio NeuroDecon / NanoPyx: {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
