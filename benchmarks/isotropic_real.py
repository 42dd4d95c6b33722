"""Self-Net on a real anisotropic stack: orthoviews before/after and per-plane resolution.

The deconwolf demo nucleus (``../shared/data/deconwolf/dapi_001.tif``: widefield DAPI,
40×201×101, 0.3 µm z, 0.13 µm xy: anisotropy ratio 2.3) restored with ``nd.isotropic`` (CPU
preset, ``--steps``), beside cubic z interpolation on the same isotropic grid. Writes
``docs/images/isotropic_dapi.png`` and the decorrelation resolution of the xy, xz and yz planes
(``nd.evaluate``) to ``benchmarks/_out/isotropic_real.json``.

    OMP_NUM_THREADS=1 python benchmarks/isotropic_real.py --steps 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "deconwolf" / "dapi_001.tif"
VOXEL = (0.3, 0.13, 0.13)  # from the repository's makefile (PROVENANCE.md)


def main() -> None:
    import neurodecon as nd
    from neurodecon.learn import SELFNET_PRESETS, z_interpolate
    from neurodecon.report._figures import orthoview_figure  # noqa: PLC2701 - a script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--figure", type=Path, default=REPO / "docs/images/isotropic_dapi.png")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/_out/isotropic_real.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    img = nd.read(DATA, voxel_size_um=VOXEL)
    raw = img.data.astype(np.float32)
    t0 = time.process_time()
    cfg = SELFNET_PRESETS["cpu"].with_changes(steps=args.steps)
    res = nd.isotropic(img, config=cfg, device="cpu")
    cpu_s = time.process_time() - t0
    cubic = z_interpolate(raw, VOXEL[0] / VOXEL[2])
    vs = res.voxel_size_um
    point = (res.data.shape[0] // 2, raw.shape[1] // 2, raw.shape[2] // 2)
    orthoview_figure(
        {"cubic": cubic, "selfnet": res.data},
        point,
        vs,
        args.figure,
        titles={"cubic": "cubic z interpolation", "selfnet": f"Self-Net ({args.steps} steps)"},
    )
    keys = ("decorr_xy_resolution_um", "decorr_xz_resolution_um", "decorr_yz_resolution_um")
    rec = {"input": str(DATA), "voxel_size_um": VOXEL, "steps": args.steps, "cpu_s": cpu_s}
    for name, vol in (("cubic", cubic), ("selfnet", res.data)):
        ev = nd.evaluate(vol, voxel_size_um=vs)
        rec[name] = {k: ev.get(k) for k in keys}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1, default=float))
    print(json.dumps(rec, indent=1, default=float))


if __name__ == "__main__":
    main()
