"""Model directories: weights plus a config.json that explains the model (its "model card").

``config.json`` (format version 2) records the architecture, normalisation, voxel size, kernel
provenance, training data, noise, the nested training config, the run and its validation.
Version 1 directories (a flat ``training`` entry) load too: the entry is migrated in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NeuroDeconError, user_error
from ..jsonutil import json_default
from ._bioimageio_import import is_bioimageio_package, unpack_bioimageio
from ._config import TrainConfig
from ._net import build_network

__all__ = [
    "Model",
    "load_model",
    "save_model",
    "model_card",
    "trained_for",
    "default_model_path",
    "FORMAT",
    "FORMAT_VERSION",
]

log = logging.getLogger("neurodecon")
FORMAT = "neurodecon-model"
#: 2: ``training`` is the nested :meth:`TrainConfig.to_dict`; 1: the flat layout before it
FORMAT_VERSION = 2
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"
#: how a model card names each architecture
ARCH_NAMES = {
    "unet": "NeuroDecon residual 3D U-Net (Sachuk et al., §4.2.1)",
    "rln": "Richardson-Lucy Network (Li et al., 2022)",
    "rcan": "3D-RCAN (Chen et al., 2021)",
    "debcr": "3D m-rBCR after DeBCR (wavelet-domain BCR units in 3D)",
}


@dataclass
class Model:
    """A loaded NeuroDecon model: the network (on the CPU, eval mode) and its full config."""

    net: torch.nn.Module  # build_network's: ResUNet, RLN, RCAN or DeBCR
    config: dict[str, Any]
    path: Path | None = None
    physics_psf: np.ndarray | None = None  # PSF of the RL_K input channel (physics-aware variant)

    @property
    def physics(self) -> dict | None:
        """Return ``config["physics"]`` (method, iterations, …) of the physics-aware variant."""
        return self.config.get("physics")

    @property
    def arch(self) -> str:
        """Return the architecture's name (``config["arch"]``; ``unet`` for older folders)."""
        return str(self.config.get("arch", self.config.get("network", {}).get("arch", "unet")))

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        """Return the voxel size (z, y, x) in µm the model was trained for."""
        z, y, x = (float(v) for v in self.config["voxel_size_um"])
        return (z, y, x)

    @property
    def train_config(self) -> TrainConfig | None:
        """Return the training config (nested or flat in the file), None when it has none."""
        training = self.config.get("training")
        return TrainConfig.from_dict(training) if training else None

    @property
    def predict_config(self) -> dict[str, Any]:
        """What inference needs: normalisation, size multiple, suggested halo."""
        return {
            "normalization": self.config["normalization"],
            "multiple": self.net.multiple,
            "halo": self.config.get("inference", {}).get("halo", 16),
        }

    def kernel_psf(self) -> np.ndarray | None:
        """Return the PSF this model was trained to invert (at its voxel size), if it has one.

        The physics-aware variant's RL_K PSF, else the training PSF saved beside the weights
        (``config["kernel"]["psf_file"]``); None for a model that has neither (older folders).
        Its output blurred by this kernel should reproduce the raw data: the consistency check
        (:func:`neurodecon.metrics.consistency`) uses it.
        """
        if self.physics_psf is not None:
            return self.physics_psf
        name = (self.config.get("kernel") or {}).get("psf_file")
        f = self.path / name if (self.path is not None and name) else None
        return np.load(f).astype(np.float32) if f is not None and f.is_file() else None

    def kernel_for(self, image_shape, voxel_size_um) -> np.ndarray | None:
        """Return :meth:`kernel_psf` made ready for an image (resampled, cropped, sum 1), or None.

        ``voxel_size_um`` is the image's; the kernel is at the model's (``voxel_size_um``).
        """
        from ..psf import resolve_psf

        kernel = self.kernel_psf()
        if kernel is None:
            return None
        return resolve_psf(
            image_shape=tuple(image_shape)[-3:],
            image_voxel_size_um=voxel_size_um,
            psf=kernel,
            psf_voxel_size_um=self.voxel_size_um,
            psf_background=None,
        ).psf

    def __repr__(self) -> str:
        return (
            f"Model(path={str(self.path)!r}, voxel_size_um={self.voxel_size_um}, "
            f"kernel={self.config.get('kernel', {}).get('mode')!r})"
        )


def default_model_path() -> Path:
    """Return the model directory shipped in the package (scripts/train_default_model.py)."""
    return Path(__file__).resolve().parents[1] / "models" / "default"


def model_card(
    cfg: TrainConfig,
    *,
    n_parameters: int,
    kernel: Mapping[str, Any],
    description: str,
    training_data: Mapping[str, Any],
    run: Mapping[str, Any],
    physics: Mapping[str, Any] | None = None,
    noise: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``config.json`` content that explains a trained model.

    Parameters
    ----------
    cfg : TrainConfig
        The training config (recorded nested under ``training``).
    n_parameters : int
        The network's parameter count.
    kernel : dict
        Kernel provenance (mode, source, the resolved PSF's record, bead extraction summary).
    description : str
        The training pairs in words (``"X = i ⊛ PSF, Y = i (PSF mode)"``).
    training_data : dict
        Volumes, generator, split, flips allowed, pool build time.
    run : dict
        Steps done, stops, time, device, precision, validation (see ``TrainState.summary``).
    physics : dict, optional
        The physics-aware variant's RL_K settings (``physics_description``).
    noise : dict, optional
        Merged into the ``noise`` entry: ``calibration`` (what the noise was calibrated on and
        how), ``explicit`` (the noise options given), ``input_levels`` (the photons and dark
        levels the training inputs spanned, ``Pool.input_levels``; what ``predict`` checks).
    """
    d, n = cfg.data, cfg.noise.resolved()  # resolved already when train() calls it
    assert n.photons is not None and n.backgrounds is not None and n.gain is not None
    extra = dict(noise or {})
    arch = cfg.net.arch.value
    return {
        "description": f"{ARCH_NAMES[arch]}, trained on {description}",
        "package_version": _version(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "voxel_size_um": list(d.voxel_size_um or ()),
        "arch": arch,
        "network": cfg.net.to_dict(),
        "n_parameters": n_parameters,
        "normalization": {
            "method": "percentile-affine",
            "percentiles": list(d.norm_percentiles),
            "scope": "whole volume, each channel/time point separately; never per tile",
            "output": "prediction mapped back with the inverse affine (input intensity units)",
        },
        "kernel": dict(kernel),
        "training_data": dict(training_data),
        "noise": {
            "photons": list(n.photons),
            "photons_at": n.photons_at.value,
            "read_noise_counts": n.read_noise,
            "background_photons": list(n.backgrounds),
            "background_counts": [n.gain * b for b in n.backgrounds],
            "gain_counts_per_e": n.gain,
            "offset_counts": n.offset,
            "model": "counts = gain · Poisson(x · photons + background) + offset + "
            "N(0, read_noise²); the input is counts / (gain · photons)",
            **extra,
        },
        "trained_for": trained_for(cfg, kernel, extra, training_data),
        "training": cfg.to_dict(),
        **run,
        "inference": {"halo": cfg.net.halo},
        **({"physics": dict(physics)} if physics else {}),
    }


def trained_for(
    cfg: TrainConfig,
    kernel: Mapping[str, Any],
    noise: Mapping[str, Any],
    training_data: Mapping[str, Any],
) -> dict[str, Any]:
    """Return what a model is for: voxel size, optics, noise levels, training structures.

    The ``trained_for`` entry of ``config.json`` (``noise`` as :func:`model_card` takes it);
    ``predict`` warns when an input's voxel size or levels differ.
    """
    input_levels = noise.get("input_levels")
    volumes = [str(v) for v in training_data.get("volumes", ())]
    d, n = cfg.data, cfg.noise.resolved()
    optics: dict[str, Any] | None = None
    if kernel.get("psf_params"):
        optics = dict(kernel["psf_params"])
    elif kernel.get("psf_fwhm_um"):
        optics = {"psf_fwhm_um": kernel["psf_fwhm_um"], "from": "bead extraction"}
    gain = n.gain or 1.0
    return {
        "voxel_size_um": list(d.voxel_size_um or ()),
        "optics": optics,
        "noise": {
            "gain_counts_per_e": n.gain,
            "read_noise_e": (n.read_noise or 0.0) / gain,
            "calibrated_from": [
                c.get("source") for c in (noise.get("calibration") or {}).get("calibrations", ())
            ],
            **({"input_levels": dict(input_levels)} if input_levels else {}),
        },
        "structures": {
            "phantoms": list(d.phantoms),
            "magnification": list(d.magnification),
            "sharp_stacks": sorted({v for v in volumes if not v.startswith("phantom:")}),
        },
    }


def _version() -> str:
    from .. import __version__

    return __version__


def save_model(
    path: Path,
    net: torch.nn.Module,
    config: dict[str, Any],
    *,
    half: bool = False,
    physics_psf: np.ndarray | None = None,
    kernel_psf: np.ndarray | None = None,
) -> Path:
    """Write ``weights.pt`` (state dict; fp16 when ``half``) and ``config.json`` into ``path``.

    ``physics_psf`` (the physics-aware variant's RL_K PSF) is saved as float32 ``.npy`` under
    ``config["physics"]["psf_file"]``, ``kernel_psf`` (the training PSF) under
    ``config["kernel"]["psf_file"]`` unless that is the same file.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    written = set()
    for arr, entry in ((physics_psf, "physics"), (kernel_psf, "kernel")):
        if arr is None:
            continue
        name = config[entry]["psf_file"]
        if name not in written:
            np.save(path / name, np.asarray(arr, np.float32))
            written.add(name)
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in net.state_dict().items()
    }
    config = {
        **config,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": WEIGHTS_NAME,
        "weights_dtype": "float16" if half else "float32",
    }
    tmp = path / (WEIGHTS_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path / WEIGHTS_NAME)
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=json_default) + "\n")
    return path


def load_model(path: str | Path | Model | None = None) -> Model:
    """Load a model directory (``None`` or ``"default"``: the model shipped with the package).

    A bioimage.io package (``.zip``) written by :func:`export_bioimageio` loads too: the model
    directory it carries is unpacked once into the cache (:func:`cache_dir`).
    """
    if isinstance(path, Model):
        return path
    path = default_model_path() if path in (None, "default") else Path(path)
    if is_bioimageio_package(path) and not (path / CONFIG_NAME).is_file():
        path = unpack_bioimageio(path)  # a package written by `neurodecon export`
    cfg_file = path / CONFIG_NAME
    if not cfg_file.is_file():
        raise user_error(
            f"not a NeuroDecon model directory (no {CONFIG_NAME})",
            path=path,
            fix="pass the folder written by `neurodecon train -o MODEL_DIR`",
        )
    try:
        config = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise user_error(
            f"{CONFIG_NAME} is not valid JSON ({exc.msg})",
            path=path,
            fix="re-train or restore the model directory",
        ) from exc
    if config.get("format") != FORMAT:
        raise user_error(f"{CONFIG_NAME} is not a {FORMAT} config", path=path)
    _migrate(config, path)
    weights = path / config.get("weights", WEIGHTS_NAME)
    if not weights.is_file():
        raise user_error(
            f"model weights {weights.name} are missing",
            path=path,
            fix="re-train or restore the model directory",
        )
    net = build_network(config)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    net.eval()
    physics_psf = None
    if config.get("physics"):
        pfile = path / config["physics"]["psf_file"]
        if not pfile.is_file():
            raise user_error(
                f"the physics-aware model's PSF {pfile.name} is missing",
                path=path,
                fix="re-train or restore the model directory",
            )
        physics_psf = np.load(pfile).astype(np.float32)
    return Model(net, config, path, physics_psf)


def _migrate(config: dict[str, Any], path: Path) -> None:
    """Turn a version 1 (flat) ``training`` entry into the nested layout, in memory."""
    training = config.get("training")
    if config.get("format_version", 1) >= 2 or not isinstance(training, dict):
        return
    try:
        config["training"] = TrainConfig.from_dict(training).to_dict()
    except NeuroDeconError as exc:  # keep what the file says; inference does not need it
        log.warning(f"{path}: the training options of this model could not be read ({exc})")
