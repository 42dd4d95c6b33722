"""What a bioimage.io package says about a NeuroDecon model: documentation, cover, config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._bioimageio_import import ATTACHMENT_PREFIX
from ._model import Model

__all__ = [
    "PAPER",
    "documentation",
    "cover_image",
    "package_config",
    "plain_config",
]


#: The NeuroDecon paper (the seed of the learned method), cited by every exported package.
PAPER = {
    "text": (
        "Sachuk A., Volkova E., Rakovskaya A., Chukanov V., Pchitskaya E. NeuroDecon: A Neural "
        "Network-Based Method for Three-Dimensional Deconvolution of Fluorescent Microscopic "
        "Images. Int. J. Mol. Sci. 2025, 26(18), 8770."
    ),
    "doi": "10.3390/ijms26188770",
}

#: config.json entries carried into the package's ``config.neurodecon`` (the rest is attached).
_CARRIED = (
    "voxel_size_um",
    "n_parameters",
    "normalization",
    "kernel",
    "noise",
    "trained_for",
    "physics",
    "validation",
    "package_version",
    "created_utc",
)


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return ``config`` as plain JSON types (what a YAML ``kwargs`` entry can hold)."""
    out: dict[str, Any] = json.loads(json.dumps(config, default=str))
    return out


def package_config(model: Model) -> dict[str, Any]:
    """Return the model's provenance for the package's ``config.neurodecon`` entry.

    Voxel size, optics and bead provenance (``kernel``, ``trained_for``), the training noise
    calibration (``noise``), the physics channel, validation numbers, and how to run it.
    """
    cfg = plain_config(model.config)
    out = {k: cfg[k] for k in _CARRIED if k in cfg}
    out["model_directory"] = f"attachments {ATTACHMENT_PREFIX}*: the NeuroDecon model folder"
    out["run"] = "neurodecon deconvolve INPUT -o OUTPUT --model THIS.zip"
    return out


def _fmt(values: Any) -> str:
    return " × ".join(f"{float(v):g}" for v in values)


def documentation(model: Model) -> str:
    """Return the package's README (markdown): what it restores, how to run it, its limits."""
    cfg = model.config
    kernel = cfg.get("kernel") or {}
    trained = cfg.get("trained_for") or {}
    levels = (trained.get("noise") or {}).get("input_levels") or {}
    photons = levels.get("photons")
    val = cfg.get("validation") or {}
    physics = cfg.get("physics") or {}
    lines = [
        "# NeuroDecon deconvolution network",
        "",
        str(cfg.get("description", "")),
        "",
        "## What it restores",
        f"- voxel size (z, y, x): {_fmt(model.voxel_size_um)} µm",
        f"- kernel ({kernel.get('mode', '?')} mode): {kernel.get('source', 'not recorded')}",
        f"- network: {cfg.get('n_parameters', '?')} parameters",
    ]
    if photons:
        lo, hi = (float(p) for p in photons)
        lines.append(f"- trained photon range at the brightest voxel: {lo:.3g}–{hi:.3g}")
    if physics:
        lines.append(
            f"- physics input: {physics.get('iterations')} iterations of {physics.get('method')} "
            "computed inside the network from the raw input"
        )
    lines += [
        "",
        "## How to run it",
        "- NeuroDecon: `neurodecon deconvolve INPUT -o OUTPUT --model THIS.zip` "
        "(or `neurodecon.learn.load_model('THIS.zip')`).",
        "- bioimage.io consumers running PyTorch state-dict weights (`bioimageio.core`): the "
        "architecture is `neurodecon.learn.BioimageioNetwork`, so `pip install neurodecon`.",
        "",
        "## Input and output",
        "One channel, camera counts (not normalised). Normalisation (whole-input percentiles) and "
        "the physics channel happen inside the network: give it whole volumes, or blocks large "
        "against the PSF; per-block normalisation changes the result. The output is in the "
        "input's intensity units, non-negative, same shape.",
        "",
        "## Validation",
        *_validation(val),
        "",
        "## Limits",
        "Trained for one microscope (the kernel and voxel size above); other voxel sizes should be "
        "resampled first; intensities far outside the trained photon range degrade it. No "
        "TorchScript or ONNX weights (the physics channel and tiling are Python).",
        "",
        "## Citation",
        PAPER["text"] + f" https://doi.org/{PAPER['doi']}",
        "",
    ]
    return "\n".join(lines)


def _validation(val: dict[str, Any]) -> list[str]:
    """Markdown lines for the training run's validation record (held-out simulated volumes)."""
    best = val.get("best") or {}
    if "psnr" not in best:
        return ["No validation was recorded for this model."]
    lines = [
        f"On held-out simulated volumes ({val.get('metric', 'PSNR / SSIM')}):",
        f"- this network: {best['psnr']:.2f} dB / {best.get('ssim', float('nan')):.3f} "
        f"(step {best.get('step', '?')})",
    ]
    base = val.get("input_baseline") or {}
    if "psnr" in base:
        lines.append(f"- the raw input: {base['psnr']:.2f} dB / {base.get('ssim', 0):.3f}")
    for name, entry in base.items():
        if isinstance(entry, dict) and "psnr" in entry:  # e.g. rl_29: the physics channel alone
            lines.append(f"- {name}: {entry['psnr']:.2f} dB / {entry.get('ssim', 0):.3f}")
    return lines


def cover_image(raw: np.ndarray, result: np.ndarray, voxel_size_um, path: Path) -> Path:
    """Write a 2:1 PNG: maximum projections of the test input and of the model's output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    for ax, vol, title in zip(axes, (raw, result), ("raw", "NeuroDecon"), strict=True):
        mip = np.asarray(vol, np.float32).max(axis=0)
        lo, hi = np.percentile(mip, (0.5, 99.8))
        ax.imshow(mip, cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(title)
        ax.set_axis_off()
    fig.suptitle(f"maximum projection, voxel {_fmt(voxel_size_um)} µm", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
