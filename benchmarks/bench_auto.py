"""``iterations="auto"``: quality against the oracle and cost against one run of its count.

For RL and rl-accel, ``auto`` continues the cross-validation's half-data estimate on the full
data (``neurodecon.classical.stopping``). This script measures, per case and thinning seed:

* the oracle: the best PSNR over the iterations of a run from the flat start (chosen with the
  truth) and its iteration;
* ``auto``: the PSNR of ``deconvolve(..., iterations="auto")`` and the count it reports;
* the cost: the wall time of that call divided by the wall time of one run of the reported count
  from the flat start (same process, same threads, best of ``--repeats``);
* with ``--study``: the PSNR after each full-data continuation iteration up to ``2·k_s``
  (``CONTINUATION`` set to 2 for the run), from which ``CONTINUATION`` is chosen.

Cases: 4 phantoms (32×96×96, Gaussian PSF, background 5; ``--sets phantoms``), 18 more
(24×64×64, 3 phantoms × 20/100/1000 photons × the true PSF and one 20 % too wide; ``study``),
the blob phantom of the tests (``blob``), and the held-out aberrated confocal case of issue 20
(``confocal``: ``microscopes.py`` ``confocal-sa``, filaments 48×160×160, camera offset 100, read
noise 2, PSF extracted from the microscope's simulated beads, background ``auto``; and
``confocal-true``: the same stack with the PSF that made it, to tell the rule's limits from the
bead PSF's).

Usage::

    python benchmarks/bench_auto.py --threads 2                 # quality + cost, all cases
    python benchmarks/bench_auto.py --study --sets phantoms     # continuation curves
    python benchmarks/bench_auto.py --sets confocal --out benchmarks/_out/auto.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import BACKGROUND, VOXEL_UM, gaussian_psf  # noqa: E402


def _psnr(pred, truth) -> float:
    from neurodecon.metrics import normalize_pair, psnr

    p, t = normalize_pair(pred, truth, "affine")
    return float(psnr(p, t, data_range=1.0))


def phantom_cases():
    """The 4 phantoms of ``bench_classical.py --auto``: (name, truth, image, psf, background)."""
    from neurodecon.synth import forward_model, phantom

    shape = (32, 96, 96)
    for seed, names, photons in [
        (0, ["beads", "tubes"], 1000.0),
        (1, ["ellipsoids", "filaments"], 300.0),
        (2, ["sponge"], 100.0),
        (3, ["puncta", "sheets"], 2000.0),
    ]:
        big = phantom(names, shape=tuple(n + 32 for n in shape), voxel_size_um=VOXEL_UM, seed=seed)
        psf = gaussian_psf((25, 17, 17), (3.0, 1.5, 1.5))
        img = forward_model(big, psf, photons=photons, background=BACKGROUND, seed=seed + 10)
        crop = tuple(slice(16, 16 + n) for n in shape)
        yield (f"{'+'.join(names)} {photons:g} ph", np.ascontiguousarray(big[crop]),
               np.ascontiguousarray(img[crop]), psf, BACKGROUND)  # fmt: skip


def study_cases():
    """The 18 cases of ``bench_classical.py --auto-study`` (true PSF and σ × 1.2)."""
    from neurodecon.synth import forward_model, phantom

    shape = (24, 64, 64)
    for seed, names in enumerate((["sponge"], ["ellipsoids", "filaments"], ["beads", "tubes"])):
        big = phantom(names, shape=tuple(n + 24 for n in shape), voxel_size_um=VOXEL_UM, seed=seed)
        crop = tuple(slice(12, 12 + n) for n in shape)
        truth = np.ascontiguousarray(big[crop], dtype=np.float32)
        psf = gaussian_psf((25, 17, 17), (3.0, 1.5, 1.5))
        wide = gaussian_psf((25, 17, 17), (3.6, 1.8, 1.8))
        for photons in (20.0, 100.0, 1000.0):
            img = forward_model(big, psf, photons=photons, background=BACKGROUND, seed=seed + 10)
            img = np.ascontiguousarray(img[crop])
            for label, dpsf in (("true", psf), ("σ×1.2", wide)):
                yield f"{'+'.join(names)} {photons:g} ph {label}", truth, img, dpsf, BACKGROUND


def blob_case():
    """The small blob phantom of the tests (``tests/unit/test_classical.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_classical import auto_stopping_case

    psf, truth, y = auto_stopping_case()
    yield "blobs 24×48×48 (tests)", truth, y, psf, 5.0


def confocal_case():
    """Issue 20's held-out aberrated confocal case (bead PSF, background ``auto``)."""
    import microscopes as mic

    from neurodecon.psf import resolve_psf

    name = "confocal-sa"
    vox = mic.MICROSCOPES[name].voxel_size_um
    truth, image = mic.sample(name, "filaments", seed=0)
    beads = mic.bead_stack(name, seed=0)
    psf = resolve_psf(image_shape=image.shape, image_voxel_size_um=vox, beads=beads,
                      beads_voxel_size_um=vox, bead_diameter_um=0.1).psf  # fmt: skip
    yield "confocal-sa filaments 48×160×160 (bead PSF)", truth, image, psf, "auto"


def confocal_true_case():
    """The same stack deconvolved with the PSF that made it (``microscopes.true_psf``)."""
    import microscopes as mic

    truth, image = mic.sample("confocal-sa", "filaments", seed=0)
    yield (
        "confocal-sa filaments 48×160×160 (true PSF)",
        truth,
        image,
        mic.true_psf("confocal-sa"),
        "auto",
    )


#: oracle runs: iterations (far past every oracle-best count measured for the set)
CAPS = {"rl": 1500, "rl-accel": 200}
CONFOCAL_CAPS = {"rl": 400, "rl-accel": 120}  # the bead-PSF case (its oracles: 315, 49)


def oracle(dec, img, truth, background, cap) -> list[float]:
    curve: list[float] = []
    dec(img, iterations=cap, background=background,
        callback=lambda k, x: curve.append(_psnr(x, truth)))  # fmt: skip
    return curve


def _best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def run_case(case, methods, seeds, study, repeats, timing=True):
    from neurodecon.classical import Deconvolver, stopping

    name, truth, img, psf, background = case
    rows = []
    for method in methods:
        dec = Deconvolver(psf, img.shape, method=method, device="cpu")
        caps = CONFOCAL_CAPS if "bead PSF" in name else CAPS
        curve = oracle(dec, img, truth, background, caps[method])
        best, k_best = max(curve), int(np.argmax(curve)) + 1
        for seed in range(seeds):
            cont: list[float] = []
            saved = dict(stopping.CONTINUATION)
            if study:
                stopping.CONTINUATION.update({m: 2.0 for m in saved})
            try:
                t_auto, res = _best_time(
                    lambda s=seed, c=cont, d=dec: _auto(d, img, background, s,
                                                        truth if study else None, c),
                    repeats if timing and not study else 1)  # fmt: skip
            finally:
                stopping.CONTINUATION.update(saved)
            k = int(res.iterations)
            row = dict(case=name, method=method, seed=seed, oracle_iter=k_best, oracle_psnr=best,
                       auto_iter=k, auto=res.auto, auto_psnr=_psnr(res.data, truth),
                       auto_s=t_auto)  # fmt: skip
            if study:
                row["continuation_psnr"] = cont
            elif timing:
                t_fixed, _ = _best_time(
                    lambda k=k, d=dec: d(img, iterations=k, background=background), repeats
                )
                row.update(fixed_s=t_fixed, cost_ratio=t_auto / t_fixed)
            row["loss_db"] = best - row["auto_psnr"]
            # iterations run (cross-validation + full data) per iteration reported: the cost in
            # iterations, free of the machine's load
            row["iteration_ratio"] = (res.auto["curve_length"]
                                      + res.auto["full_data_iterations"]) / k  # fmt: skip
            rows.append(row)
            a = res.auto
            print(f"| {name} | {method} | {seed} | {k_best} / {best:.2f} | "
                  f"{a['half_data_iterations']}+{a['full_data_iterations']}"
                  f"{' warm' if a['warm_start'] else ''} | {row['auto_psnr']:.2f} | "
                  f"{row['loss_db']:.2f} | {row['iteration_ratio']:.2f} | "
                  f"{row.get('cost_ratio', float('nan')):.2f} |", flush=True)  # fmt: skip
    return rows


def reference_check(case, rows, repeats):
    """Issue 20's bar on its case: ``rl-accel`` auto (seed 0, as users run it) against plain RL
    run to its oracle count from the flat start — wall time and PSNR, same process."""
    from neurodecon.classical import Deconvolver

    name, truth, img, psf, background = case
    rl = next(r for r in rows if r["case"] == name and r["method"] == "rl")
    dec = Deconvolver(psf, img.shape, method="rl", device="cpu")
    t_ref, out = _best_time(lambda: dec(img, iterations=rl["oracle_iter"], background=background),
                            repeats)  # fmt: skip
    dec_acc = Deconvolver(psf, img.shape, method="rl-accel", device="cpu")
    t_acc, res = _best_time(lambda: dec_acc(img, iterations="auto", background=background,
                                            return_result=True), repeats)  # fmt: skip
    ref = dict(case=name, rl_oracle_iter=rl["oracle_iter"], rl_oracle_s=t_ref,
               rl_oracle_psnr=_psnr(out, truth), rl_accel_auto_iter=int(res.iterations),
               rl_accel_auto_s=t_acc, rl_accel_auto_psnr=_psnr(res.data, truth))  # fmt: skip
    print(
        f"{name}: rl-accel auto {ref['rl_accel_auto_iter']} it {t_acc:.2f} s "
        f"{ref['rl_accel_auto_psnr']:.2f} dB | plain RL to its oracle count "
        f"{ref['rl_oracle_iter']} it {t_ref:.2f} s {ref['rl_oracle_psnr']:.2f} dB",
        flush=True,
    )
    return ref


def _auto(dec, img, background, seed, truth, cont):
    """``auto`` as a user calls it (thinning seed ``seed``; the library's is 0); with ``truth``,
    the PSNR after each full-data iteration."""
    from functools import partial
    from unittest import mock

    from neurodecon.classical import _engine, stopping

    cb = None if truth is None else (lambda k, x: cont.append(_psnr(x, truth)))
    with mock.patch.object(_engine, "cross_validate", partial(stopping.cross_validate, seed=seed)):
        return dec(img, iterations="auto", background=background, return_result=True,
                   callback=cb)  # fmt: skip


def choose_continuation(rows):
    """Worst and mean loss against the oracle for each continuation factor g (study rows)."""
    out = {}
    for method in sorted({r["method"] for r in rows}):
        mine = [r for r in rows if r["method"] == method and r["auto"]["warm_start"]]
        table = {}
        for g in np.round(np.arange(0.3, 2.01, 0.1), 2):
            losses = []
            for r in mine:
                c = r["continuation_psnr"]
                j = max(int(round(g * r["auto"]["half_data_iterations"])), 1)
                losses.append(r["oracle_psnr"] - c[min(j, len(c)) - 1])
            table[float(g)] = (max(losses), float(np.mean(losses)))
        out[method] = table
        print(f"{method}: g → worst / mean loss (dB) over {len(mine)} warm runs")
        for g, (w, m) in table.items():
            print(f"  {g:.1f}: {w:.2f} / {m:.2f}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--sets", nargs="+", default=["phantoms", "study", "confocal"],
                    choices=["phantoms", "study", "confocal", "confocal-true", "blob"])  # fmt: skip
    ap.add_argument("--methods", nargs="+", default=["rl", "rl-accel"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="timing: best of this many")
    ap.add_argument("--no-timing", action="store_true", help="quality and iteration counts only")
    ap.add_argument("--study", action="store_true", help="continuation curves (CONTINUATION=2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sets = {"phantoms": phantom_cases, "study": study_cases, "confocal": confocal_case,
            "confocal-true": confocal_true_case, "blob": blob_case}  # fmt: skip
    print("| case | method | seed | oracle it / PSNR | auto it (half + full) | auto PSNR | "
          "loss dB | iterations / reported | time / one run |")  # fmt: skip
    print("| --- " * 9 + "|")
    rows, references = [], []
    for s in args.sets:
        for case in sets[s]():
            rows += run_case(case, args.methods, args.seeds, args.study, args.repeats,
                             timing=not args.no_timing)  # fmt: skip
            if (
                s.startswith("confocal")
                and not args.study
                and set(args.methods) >= {"rl", "rl-accel"}
            ):
                references.append(reference_check(case, rows, args.repeats))
    summary = {}
    for method in args.methods:
        for label, pick in (("true PSF", lambda r: "σ×1.2" not in r["case"]),
                            ("PSF 20 % too wide", lambda r: "σ×1.2" in r["case"])):  # fmt: skip
            mine = [r for r in rows if r["method"] == method and pick(r)]
            if not mine:
                continue
            losses = [r["loss_db"] for r in mine]
            ratios = [r["cost_ratio"] for r in mine if "cost_ratio" in r]
            its = [r["iteration_ratio"] for r in mine]
            summary[f"{method} {label}"] = dict(
                worst_loss=max(losses), mean_loss=float(np.mean(losses)),
                over_half_db=sum(v > 0.5 for v in losses), runs=len(losses),
                worst_iterations=max(its), median_iterations=float(np.median(its)),
                worst_cost=max(ratios) if ratios else None,
                median_cost=float(np.median(ratios)) if ratios else None)  # fmt: skip
            print(f"{method}, {label}: loss worst {max(losses):.2f} dB, mean "
                  f"{np.mean(losses):.2f} dB, {summary[f'{method} {label}']['over_half_db']} of "
                  f"{len(losses)} runs over 0.5 dB; iterations / reported worst {max(its):.2f}, "
                  f"median {np.median(its):.2f}"
                  + (f"; time / one run worst {max(ratios):.2f}×, median {np.median(ratios):.2f}×"
                     if ratios else ""))  # fmt: skip
    result = {"rows": rows, "summary": summary, "reference": references}
    if args.study:
        result["continuation"] = choose_continuation(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
