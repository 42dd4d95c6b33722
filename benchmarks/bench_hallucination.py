"""Does the consistency check (and the flip spread) notice where a learned result is wrong?

    .venv/bin/python benchmarks/bench_hallucination.py

The shipped default model (trained for the demo microscope: confocal NA 1.4, 0.1×0.05×0.05 µm)
on samples of that microscope (demo camera: 300 photons at the brightest voxel, background 5,
read noise 1; 32×128×128):

* in distribution: the demo's own families (sponge + puncta), seeds 0 and 2;
* out of distribution: a 3D grid of thin lines (1 µm pitch), letters rendered in three planes
  (text), and the demo families at 3× their feature size (another magnification);
* out of the microscope: the demo families imaged by another microscope (NA 1.0 and NA 1.2
  instead of 1.4, same camera), with another light level (30 and 3000 photons at the
  brightest voxel instead of 300), or at another magnification whose file still says the demo
  voxel size (lateral voxels 1.5× and 2× larger, 0.5× smaller: the PSF in voxels narrower or
  wider than the model's) — a model used on data it was not trained for.

For each: PSNR / SSIM of the network (and of RL 50 with the same kernel, for reference) against
the truth; the consistency check with the model's own kernel (χ², % flagged, % invented); and how
well ``|map|`` and the flip spread find the voxels where the network is wrong — the area under
the detection curve (AUC, 0.5 = chance) for the 5 % of voxels with the largest error of the
prediction *blurred again* (what the data can see), and of the prediction itself; as a baseline,
the AUC of the prediction's own intensity (errors sit where the structure is); and the mean
spread over the mean prediction (a candidate for an out-of-distribution warning). Last column:
the warnings a user gets from ``neurodecon deconvolve --model default --check`` on that input
(``levels``: the model's input-level check, ``check``: the consistency check flags more than its
threshold; ``–``: none).

    .venv/bin/python benchmarks/bench_hallucination.py --false-alarms 12

instead measures how often the warnings fire on in-distribution samples (the demo families with
seeds 10, 11, …; the demo camera and microscope): flagged share and χ² per seed, and the count of
samples with a warning.
"""

from __future__ import annotations

import numpy as np

SHAPE = (32, 128, 128)
CAMERA = {"photons": 300.0, "background": 5.0, "read_noise": 1.0}
#: cases imaged by another microscope, at another light level or another magnification:
#: (NA, photons, true lateral voxel / the demo's, which the file still claims)
OTHER = {
    "demo families, NA 1.2 microscope": (1.2, 300.0, 1.0),
    "demo families, NA 1.0 microscope": (1.0, 300.0, 1.0),
    "demo families, 30 photons": (1.4, 30.0, 1.0),
    "demo families, 3000 photons": (1.4, 3000.0, 1.0),
    "demo families, lateral voxel 2× (file says the demo's)": (1.4, 300.0, 2.0),
    "demo families, lateral voxel 1.5× (file says the demo's)": (1.4, 300.0, 1.5),
    "demo families, lateral voxel 0.5× (file says the demo's)": (1.4, 300.0, 0.5),
}


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (rank formula), NaN if degenerate."""
    from scipy.stats import rankdata

    s, p = score.ravel(), positive.ravel()
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[p].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _grid(vox) -> np.ndarray:
    """Lines along z, y and x through a cubic lattice of 1 µm pitch, one voxel thick."""
    t = np.zeros(SHAPE, np.float32)
    pz, py, px = (max(1, int(round(1.0 / v))) for v in vox)
    t[::pz, ::py, :] = 1.0  # along x
    t[::pz, :, ::px] = 1.0  # along y
    t[:, ::py, ::px] = 1.0  # along z
    return t


def _text() -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(SHAPE[2] / 50, SHAPE[1] / 50), dpi=50)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.05, 0.55, "NEURO", fontsize=22, weight="bold")
    fig.text(0.05, 0.15, "DECON", fontsize=22, weight="bold")
    canvas.draw()
    img = 1.0 - np.asarray(canvas.buffer_rgba())[..., 0].astype(np.float32) / 255.0
    img = img[: SHAPE[1], : SHAPE[2]]
    t = np.zeros(SHAPE, np.float32)
    for z in (8, 16, 24):
        t[z - 1 : z + 2, : img.shape[0], : img.shape[1]] = img
    return t


def false_alarms(n: int) -> None:
    """The warnings of ``deconvolve --model default --check`` on ``n`` in-distribution samples."""
    import torch

    from neurodecon.learn import check_levels, load_model, predict
    from neurodecon.metrics import FLAGGED_LIMIT, consistency
    from neurodecon.report import demo_data
    from neurodecon.synth import forward_model, phantom

    torch.set_num_threads(2)
    d = demo_data()
    vox, psf = d["voxel_size_um"], d["psf"]
    model = load_model("default")
    kernel = model.kernel_for(SHAPE, vox)
    flagged, warned = [], 0
    print("| seed | χ² | flagged % | warnings |\n|---|---|---|---|")
    for seed in range(10, 10 + n):  # seeds the table above does not use
        truth = phantom(["sponge", "puncta"], shape=SHAPE, voxel_size_um=vox, seed=seed)
        raw = forward_model(truth, psf, seed=100 + seed, **CAMERA)
        net = predict(model, raw, voxel_size_um=vox, device="cpu", check=False)
        c = consistency(raw, net, kernel)
        w = (["levels"] if check_levels(model, raw) else []) + ([] if c.consistent else ["check"])
        flagged.append(100 * c.flagged_fraction)
        warned += bool(w)
        print(f"| {seed} | {c.score:.2f} | {flagged[-1]:.2f} | {', '.join(w) or '–'} |", flush=True)
    print(
        f"\n{warned} of {n} in-distribution samples warned; flagged {np.mean(flagged):.2f} % mean, "
        f"{np.max(flagged):.2f} % max (warning above {100 * FLAGGED_LIMIT:g} %; "
        f"{sum(f > 1 for f in flagged)} above 1 %)"
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--false-alarms", type=int, metavar="N", help="N in-distribution seeds")
    args = parser.parse_args()
    if args.false_alarms:
        false_alarms(args.false_alarms)
        return
    import torch

    from neurodecon.classical import deconvolve
    from neurodecon.learn import check_levels, load_model, predict_with_spread
    from neurodecon.metrics import consistency, evaluate, normalize_pair
    from neurodecon.psf import make_psf
    from neurodecon.report import demo_data, demo_microscope
    from neurodecon.synth import convolve, forward_model, phantom

    torch.set_num_threads(2)
    d = demo_data()
    vox = d["voxel_size_um"]
    psf = d["psf"]
    model = load_model("default")
    kernel = model.kernel_for(SHAPE, vox)
    fam = ["sponge", "puncta"]
    cases = {
        "demo families, seed 0 (in distribution)": phantom(fam, shape=SHAPE, voxel_size_um=vox),
        "demo families, seed 2 (in distribution)": phantom(
            fam, shape=SHAPE, voxel_size_um=vox, seed=2
        ),
        "3D grid, 1 µm pitch": _grid(vox),
        "text in three planes": _text(),
        "demo families at 3× size": phantom(
            fam, shape=SHAPE, voxel_size_um=vox, seed=3, feature_um=3 * vox[2]
        ),
    }  # fmt: skip
    imaging = {name: (psf, CAMERA) for name in cases}
    micro = {k: v for k, v in demo_microscope().items() if k not in ("model", "voxel_size_um")}
    for k, (name, (na, photons, scale)) in enumerate(OTHER.items()):
        true_vox = (vox[0], vox[1] * scale, vox[2] * scale)  # what the raw data really sample
        cases[name] = phantom(fam, shape=SHAPE, voxel_size_um=true_vox, seed=5 + k)
        other = make_psf("confocal", shape=psf.shape, voxel_size_um=true_vox, **{**micro, "na": na})
        imaging[name] = (other, {**CAMERA, "photons": photons})
    print(
        "| sample | network PSNR / SSIM | RL 50 PSNR / SSIM | χ² | flagged % | invented % "
        "| AUC map (visible err.) | AUC spread (visible) | AUC map (error) | AUC spread (error) "
        "| AUC intensity (error) | spread / signal | warnings |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (name, truth) in enumerate(cases.items()):
        truth = np.asarray(truth, np.float32)
        made_by, camera = imaging[name]
        raw = forward_model(truth, made_by, seed=40 + i, **camera)
        net, spread = predict_with_spread(model, raw, voxel_size_um=vox, device="cpu", check=False)
        rl = np.asarray(deconvolve(raw, kernel, "rl", iterations=50, background="auto"))
        c = consistency(raw, net, kernel)
        warned = ["levels"] if check_levels(model, raw) else []
        warned += [] if c.consistent else ["check"]
        e_net = evaluate(net, truth, voxel_size_um=vox)
        e_rl = evaluate(rl, truth, voxel_size_um=vox)
        inner = tuple(slice(a, b) for a, b in c.interior)
        p, t = normalize_pair(net, truth)
        err = np.abs(p - t)[inner]
        vis = np.abs(convolve(p, kernel) - convolve(t, kernel))[inner]
        top_err = err >= np.percentile(err, 95)
        top_vis = vis >= np.percentile(vis, 95)
        amap = np.abs(c.map[inner])
        spr = spread[inner]
        print(
            f"| {name} | {e_net['psnr']:.2f} / {e_net['ssim']:.3f} | "
            f"{e_rl['psnr']:.2f} / {e_rl['ssim']:.3f} | {c.score:.2f} | "
            f"{100 * c.flagged_fraction:.2f} | {100 * c.invented_fraction:.2f} | "
            f"{_auc(amap, top_vis):.2f} | {_auc(spr, top_vis):.2f} | "
            f"{_auc(amap, top_err):.2f} | {_auc(spr, top_err):.2f} | "
            f"{_auc(np.abs(p[inner]), top_err):.2f} | "
            f"{float(spr.mean() / max(float(net[inner].mean()), 1e-12)):.3f} | "
            f"{', '.join(warned) or '–'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
