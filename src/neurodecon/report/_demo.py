"""``demo``: simulate a stack and a bead image from a documented microscope, then ``compare``.

Nothing is downloaded: the sample (a dense phantom), the beads and the ground truth are made on
the fly, deterministically from fixed seeds, with the microscope the shipped model was trained
for (read from the model's ``config.json`` when it records one; :data:`DEMO_MICROSCOPE` else).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..classical import ACCELERATED_FACTOR
from ..errors import user_error
from ..progress import ProgressFn

__all__ = ["demo", "DEMO_MICROSCOPE", "demo_microscope", "demo_data"]

log = logging.getLogger("neurodecon")

#: The simulated microscope: a confocal with a 1.4 NA oil objective, Nyquist-sampled.
DEMO_MICROSCOPE: dict[str, Any] = {
    "model": "confocal",
    "na": 1.4,
    "wavelength_um": 0.52,
    "excitation_wavelength_um": 0.488,
    "immersion_index": 1.515,
    "pinhole_au": 1.0,
    "voxel_size_um": (0.1, 0.05, 0.05),
}

#: Sizes (z, y, x) in voxels, and noise: full demo vs ``quick`` (test suite).
_SIZES = {
    False: {"sample": (40, 160, 160), "beads": (40, 192, 192), "psf": (33, 49, 49)},
    True: {"sample": (24, 64, 64), "beads": (32, 160, 160), "psf": (21, 31, 31)},
}
_PHOTONS, _BACKGROUND, _READ_NOISE = 300.0, 5.0, 1.0
_BEAD_DIAMETER_UM = 0.1
_DEMO_ITERATIONS = 50  # RL and RL-TV in the full demo (see demo())
#: rl-accel in the full demo: the accelerated equivalent of RL's 50 by the ``iterations="auto"``
#: mapping ``ACCELERATED_FACTOR · √k_RL`` (2.2·√50 ≈ 16)
_DEMO_ACCEL_ITERATIONS = round(ACCELERATED_FACTOR * _DEMO_ITERATIONS**0.5)
_BEAD_SPACING_UM = 2.4  # mean distance between beads (well separated for the extraction)
_PHANTOMS = ["sponge", "puncta"]  # an ER-like membrane network and vesicles


def demo_microscope() -> dict[str, Any]:
    """Return the demo's microscope: the shipped model's recorded PSF parameters, if any.

    They come from the model's ``config.json`` → ``kernel.psf_params``; without them
    :data:`DEMO_MICROSCOPE`.
    """
    micro = dict(DEMO_MICROSCOPE)
    from ..learn import default_model_path

    cfg_file = Path(default_model_path()) / "config.json"
    if cfg_file.is_file():
        import json

        config = json.loads(cfg_file.read_text())
        kernel = config.get("kernel") or config.get("kernel_info") or {}
        params = kernel.get("psf_params") or {}
        micro.update({k: v for k, v in params.items() if k in DEMO_MICROSCOPE})
        if "voxel_size_um" in config and "voxel_size_um" not in params:
            micro["voxel_size_um"] = config["voxel_size_um"]
    micro["voxel_size_um"] = tuple(float(v) for v in micro["voxel_size_um"])
    return micro


def _true_psf(micro: dict[str, Any], shape) -> np.ndarray:
    from ..psf import make_psf

    optics = {k: v for k, v in micro.items() if k not in ("model", "voxel_size_um")}
    if micro["model"] not in ("confocal", "two-photon"):
        optics.pop("excitation_wavelength_um", None)
    if micro["model"] != "confocal":
        optics.pop("pinhole_au", None)
    return make_psf(micro["model"], shape=shape, voxel_size_um=micro["voxel_size_um"], **optics)


def demo_data(*, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Simulate the ``sample``, ``truth`` and ``beads`` arrays; also the ``psf`` and ``microscope``.

    The sample is a dense phantom imaged through the PSF with Poisson noise (``photons`` at the
    brightest voxel), background and Gaussian read noise; the beads are spheres of
    ``bead_diameter_um`` at random sub-voxel positions imaged the same way.
    """
    from ..synth import forward_model, phantom

    micro = demo_microscope()
    sizes = _SIZES[bool(quick)]
    vs = tuple(micro["voxel_size_um"])
    psf = _true_psf(micro, sizes["psf"])
    truth = phantom(_PHANTOMS, shape=sizes["sample"], voxel_size_um=vs, seed=seed)
    sample = forward_model(
        truth, psf, photons=_PHOTONS, background=_BACKGROUND, read_noise=_READ_NOISE, seed=seed + 1
    )
    bead_truth = phantom(
        "beads",
        shape=sizes["beads"],
        voxel_size_um=vs,
        seed=seed + 2,
        feature_um=vs[2],
        beads_diameter_um=_BEAD_DIAMETER_UM,
        beads_spacing=_BEAD_SPACING_UM / vs[2],
    )
    beads = forward_model(
        bead_truth,
        psf,
        photons=4 * _PHOTONS,
        background=_BACKGROUND,
        read_noise=_READ_NOISE,
        seed=seed + 3,
    )
    return {
        "sample": sample,
        "truth": np.asarray(truth, dtype=np.float32),
        "beads": beads,
        "psf": psf,
        "microscope": micro,
        "voxel_size_um": vs,
        "bead_diameter_um": _BEAD_DIAMETER_UM,
    }


def _describe(micro: dict[str, Any], data: dict[str, Any], quick: bool) -> str:
    vs = " × ".join(f"{v:g}" for v in micro["voxel_size_um"])
    return (
        f"Simulated {micro['model']} microscope: NA {micro['na']}, emission "
        f"{micro['wavelength_um']} µm, excitation {micro.get('excitation_wavelength_um')} µm, "
        f"immersion n {micro['immersion_index']}, pinhole {micro.get('pinhole_au')} AU, voxel "
        f"{vs} µm (z, y, x). Sample: phantoms {', '.join(_PHANTOMS)}, {data['sample'].shape}, "
        f"{_PHOTONS:g} photons at the brightest voxel, background {_BACKGROUND:g}, read noise "
        f"{_READ_NOISE:g}. Beads: {data['bead_diameter_um'] * 1000:g} nm spheres, "
        f"{data['beads'].shape}. Seeds fixed{' (quick mode)' if quick else ''}."
    )


def demo(
    output_dir: str | os.PathLike = "demo_output",
    *,
    overwrite: bool = False,
    quick: bool = False,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Simulate the demo data, write it to ``output_dir/inputs`` and run :func:`compare` on it.

    The PSF comes from the beads; the classical methods, the shipped model when installed and the
    ground truth are compared.
    """
    from ..io import Image, write
    from ..learn import default_model_path
    from ._compare import compare

    out = Path(output_dir)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise user_error(
            "the demo folder already exists and is not empty",
            path=out,
            fix="choose another folder with -o or pass --overwrite",
        )
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    from ..progress import report

    report(progress, 0, 1, "simulating the sample, the beads and the ground truth")
    data = demo_data(quick=quick)
    vs = data["voxel_size_um"]
    files = {}
    for key in ("sample", "beads", "truth", "psf"):
        name = "true_psf" if key == "psf" else key
        files[key] = write(
            out / "inputs" / f"{name}.tif",
            Image(data[key], voxel_size_um=vs),
            overwrite=True,
            provenance={"demo": _describe(data["microscope"], data, quick)},
        )
    methods = ["wiener", "rl", "rltv"] + ([] if quick else ["rl-accel"])
    if (Path(default_model_path()) / "config.json").is_file():
        methods.append("model:default")
    else:
        log.warning(
            "no shipped model in this installation: the demo runs the classical methods only"
        )
    # Fixed iteration counts keep the demo short: on this sample "auto" lets plain RL run several
    # times longer than its best iteration count, RL-TV longer still, and rl-accel's "auto" costs a
    # plain-RL cross-validation (47 s of the demo's 80 s, and over-iterated: 16.15 dB vs 17.46 for
    # RL at 50; `benchmarks/bench_demo.py`). rl-accel gets the accelerated equivalent of RL's 50.
    per_method = (
        {}
        if quick
        else {
            "rl": {"iterations": _DEMO_ITERATIONS},
            "rltv": {"iterations": _DEMO_ITERATIONS},
            "rl-accel": {"iterations": _DEMO_ACCEL_ITERATIONS},
        }
    )
    return compare(
        files["sample"],
        beads=files["beads"],
        bead_diameter_um=data["bead_diameter_um"],
        methods=methods,
        truth=files["truth"],
        output_dir=out,
        overwrite=True,
        iterations=10 if quick else "auto",
        method_options=per_method,
        background="auto",
        device=device,
        title="NeuroDecon demo" + (" (quick)" if quick else ""),
        notes=[
            _describe(data["microscope"], data, quick),
            (
                "Iterations: 10 for every iterative method (quick mode)."
                if quick
                else f"Iterations (fixed, to keep the demo short): RL and RL-TV "
                f"{_DEMO_ITERATIONS}, rl-accel {_DEMO_ACCEL_ITERATIONS}."
            ),
            "Inputs are in inputs/ (sample.tif, beads.tif, truth.tif, true_psf.tif); "
            "re-run with: neurodecon compare inputs/sample.tif --beads inputs/beads.tif "
            f"--bead-diameter {data['bead_diameter_um']} --truth inputs/truth.tif "
            "-o REPORT_DIR",
        ],
        progress=progress,
    )
