"""Model directories: weights plus a config that explains the model; loading and the shipped default."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import user_error
from ..jsonutil import json_default
from ._net import ResUNet, build_network

__all__ = ["Model", "load_model", "save_model", "default_model_path", "FORMAT"]

log = logging.getLogger("neurodecon")
FORMAT = "neurodecon-model"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"


@dataclass
class Model:
    """A loaded NeuroDecon model: the network (on the CPU, eval mode) and its full config."""

    net: ResUNet
    config: dict[str, Any]
    path: Path | None = None
    physics_psf: np.ndarray | None = None  # PSF of the RL_K input channel (physics-aware variant)

    @property
    def physics(self) -> dict | None:
        """``config["physics"]`` (method, iterations, …) for the physics-aware variant, else None."""
        return self.config.get("physics")

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.config["voxel_size_um"])

    @property
    def predict_config(self) -> dict[str, Any]:
        """What inference needs: normalisation, size multiple, suggested halo."""
        return {
            "normalization": self.config["normalization"],
            "multiple": self.net.multiple,
            "halo": self.config.get("inference", {}).get("halo", 16),
        }

    def __repr__(self) -> str:
        return (
            f"Model(path={str(self.path)!r}, voxel_size_um={self.voxel_size_um}, "
            f"kernel={self.config.get('kernel', {}).get('mode')!r})"
        )


def default_model_path() -> Path:
    """Directory of the model shipped inside the package (trained by scripts/train_default_model.py)."""
    return Path(__file__).resolve().parents[1] / "models" / "default"


def save_model(
    path: Path,
    net: ResUNet,
    config: dict[str, Any],
    *,
    half: bool = False,
    physics_psf: np.ndarray | None = None,
) -> Path:
    """Write ``weights.pt`` (state dict; fp16 when ``half``) and ``config.json`` into ``path``
    (plus the RL_K PSF, float32 ``.npy``, for the physics-aware variant).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if physics_psf is not None:
        np.save(path / config["physics"]["psf_file"], np.asarray(physics_psf, np.float32))
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in net.state_dict().items()
    }
    config = {
        **config,
        "format": FORMAT,
        "format_version": 1,
        "weights": WEIGHTS_NAME,
        "weights_dtype": "float16" if half else "float32",
    }
    tmp = path / (WEIGHTS_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path / WEIGHTS_NAME)
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=json_default) + "\n")
    return path


def load_model(path: str | Path | Model | None = None) -> Model:
    """Load a model directory (``None`` or ``"default"``: the model shipped with the package)."""
    if isinstance(path, Model):
        return path
    path = default_model_path() if path in (None, "default") else Path(path)
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
    weights = path / config.get("weights", WEIGHTS_NAME)
    if not weights.is_file():
        raise user_error(
            f"model weights {weights.name} are missing",
            path=path,
            fix="re-train or restore the model directory",
        )
    net = build_network(config["network"])
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


def check_voxel_size(model: Model, voxel_size_um, *, rtol: float = 0.1) -> None:
    """Warn (once per call) when the image's voxel size differs from the model's by > ``rtol``."""
    if voxel_size_um is None:
        return
    want = model.voxel_size_um
    got = tuple(float(v) for v in voxel_size_um)
    if any(abs(g - w) > rtol * w for g, w in zip(got, want, strict=True)):
        log.warning(
            f"the image voxel size {got} µm differs from the model's {want} µm; the network "
            f"expects the blur in voxels it was trained on. Resample the image to {want} µm, or "
            f"train a model for {got} µm (`neurodecon train --voxel-size ...`)"
        )
