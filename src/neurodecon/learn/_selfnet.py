"""``isotropic``: Self-Net restoration of an anisotropic stack, trained on that stack alone.

Training (``_selfnet_train``) learns, from the stack's own lateral planes, how its axial planes
are blurred (stage 1) and how to undo that blur (stage 2). Inference runs the deblurring network
on every xz and every yz plane of the stack resampled to isotropic voxels (cubic along z) and
fuses the two results (Ning et al. 2023, Self-Net).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import user_error
from ..io import Image
from ..progress import ProgressFn, report
from ._norm import Normalization
from ._precision import place_network
from ._selfnet_config import PRESETS, SelfNetConfig
from ._selfnet_data import (
    WARN_RATIO,
    SelfNetData,
    anisotropy_ratio,
    isotropic_voxel_size,
    stack_normalization,
    z_interpolate,
)
from ._selfnet_nets import Generator
from ._selfnet_train import CHECKPOINT_NAME, train_selfnet

__all__ = [
    "SelfNetModel",
    "isotropic",
    "restore_stack",
    "load_selfnet",
    "restore_isotropic",
    "fuse_directions",
    "SELFNET_CONFIG_NAME",
    "selfnet_config",
]

log = logging.getLogger("neurodecon")

SELFNET_CONFIG_NAME = "selfnet.json"
_WEIGHTS_NAME = "selfnet.pt"
_RATIO_TOLERANCE = 0.1
_CHUNK_PIXELS = 4_000_000


@dataclass
class SelfNetModel:
    """A trained deblurring network and what it was trained for."""

    net: Generator
    config: SelfNetConfig
    ratio: float
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``selfnet.pt`` (weights) and ``selfnet.json`` (configuration, training record)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{_WEIGHTS_NAME}.{os.getpid()}.tmp"
        torch.save(self.net.state_dict(), tmp)
        os.replace(tmp, out / _WEIGHTS_NAME)
        record = {"kind": "selfnet", "config": self.config.to_dict(), "ratio": self.ratio}
        text = json.dumps({**record, **self.info}, indent=2)
        tmp_json = out / f".{SELFNET_CONFIG_NAME}.{os.getpid()}.tmp"
        tmp_json.write_text(text)
        os.replace(tmp_json, out / SELFNET_CONFIG_NAME)
        return out


def load_selfnet(directory: str | os.PathLike) -> SelfNetModel:
    """Read a model directory written by :meth:`SelfNetModel.save`."""
    d = Path(directory)
    cfg_path = d / SELFNET_CONFIG_NAME
    if not cfg_path.is_file() or not (d / _WEIGHTS_NAME).is_file():
        raise user_error(
            f"not a Self-Net model folder (no {SELFNET_CONFIG_NAME} / {_WEIGHTS_NAME})",
            path=d,
            fix="train one with `neurodecon isotropic IN -o OUT --save-model DIR`",
        )
    record = json.loads(cfg_path.read_text())
    config = SelfNetConfig.from_dict(record.pop("config"))
    ratio = float(record.pop("ratio"))
    record.pop("kind", None)
    net = Generator(config.channels, config.blocks)
    net.load_state_dict(torch.load(d / _WEIGHTS_NAME, map_location="cpu", weights_only=True))
    return SelfNetModel(net.eval(), config, ratio, record)


def selfnet_config(preset: str = "auto", device: torch.device | None = None) -> SelfNetConfig:
    """Return the preset's configuration; ``auto`` is ``paper`` on a GPU, ``cpu`` otherwise."""
    if preset == "auto":
        preset = "paper" if device is not None and device.type == "cuda" else "cpu"
    if preset not in PRESETS:
        raise user_error(
            f"unknown Self-Net preset {preset!r}", fix="use auto, " + ", ".join(PRESETS)
        )
    return PRESETS[preset]


@torch.no_grad()
def restore_isotropic(
    net: Generator,
    volume: np.ndarray,
    ratio: float,
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Run ``net`` on every xz and yz plane of the z-interpolated volume; fuse the two.

    ``volume`` is the normalised ``(Z, Y, X)`` stack; the result is on the isotropic grid, the
    xz and yz restorations combined by :func:`fuse_directions`.
    """
    iso = z_interpolate(volume, ratio)
    nz, ny, nx = iso.shape
    net = place_network(net, device).eval()
    out = (np.zeros_like(iso), np.zeros_like(iso))  # restored in xz planes, in yz planes
    total, done = ny + nx, 0
    for axis, n in ((1, ny), (2, nx)):
        width = iso.shape[3 - axis]
        chunk = max(1, _CHUNK_PIXELS // (nz * width))
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            planes = np.take(iso, range(start, stop), axis=axis)  # (nz, k, w) or (nz, w, k)
            planes = np.moveaxis(planes, axis, 0)  # (k, nz, width)
            t = torch.from_numpy(np.ascontiguousarray(planes))[:, None].to(device)
            res = np.moveaxis(net(t)[:, 0].float().cpu().numpy(), 0, axis)
            index = [slice(None)] * 3
            index[axis] = slice(start, stop)
            out[axis - 1][tuple(index)] = res
            done += stop - start
            report(progress, done, total, "xz planes" if axis == 1 else "yz planes")
    return fuse_directions(*out)


def restore_stack(
    net: Generator,
    volume: np.ndarray,
    ratio: float,
    *,
    device: torch.device,
    norm: Normalization | None = None,
    floor: bool = True,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, float]:
    """Restore a ``(Z, Y, X)`` stack in its own units: map, :func:`restore_isotropic`, map back.

    ``norm`` maps the stack to the network's range (default :func:`stack_normalization`, as in
    training). With ``floor`` the result is floored at the stack's background level
    (:func:`~neurodecon.metrics.estimate_background`): a mean intensity below it is not light
    but the network's undershoot beside bright objects. Returns the result and that level.
    """
    from ..metrics import estimate_background

    norm = stack_normalization(volume) if norm is None else norm
    restored = norm.invert(restore_isotropic(net, norm.apply(volume), ratio, device=device,
                                             progress=progress))  # fmt: skip
    level = float(estimate_background(volume))
    if floor:
        np.maximum(restored, np.float32(level), out=restored)
    return restored, level


def fuse_directions(along_x: np.ndarray, along_y: np.ndarray, planes: int = 16) -> np.ndarray:
    """Combine restorations made in xz planes (``along_x``) and in yz planes (``along_y``).

    Each is trusted along the lateral axis inside its planes: per z plane, the lateral spectrum
    is ``w · X + (1 − w) · Y`` with ``w = kx² / (kx² + ky²)`` (½ at kx = ky = 0, where it is the
    plain average). Across its planes a restoration is stitched from independent 2D results, so
    there it is less sharp (measured: BENCHMARKS.md, Self-Net). Works ``planes`` z planes at a
    time, in single precision.
    """
    import scipy.fft

    ny, nx = along_x.shape[1:]
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    den = kx**2 + ky**2
    w = np.where(den > 0, kx**2 / np.where(den > 0, den, 1.0), 0.5).astype(np.float32) - 0.5
    out = 0.5 * (along_x + along_y)
    for z in range(0, len(out), planes):
        diff = scipy.fft.rfft2(along_x[z : z + planes] - along_y[z : z + planes], axes=(1, 2))
        out[z : z + planes] += scipy.fft.irfft2(w * diff, s=(ny, nx), axes=(1, 2))
    return out.astype(np.float32, copy=False)


def _check_model_dir(save_model: Path, resume: bool, overwrite: bool) -> None:
    if save_model.exists() and not save_model.is_dir():
        raise user_error("exists and is not a folder", path=save_model, fix="choose a folder name")
    busy = save_model.is_dir() and any(save_model.iterdir())
    if busy and not (resume or overwrite):
        raise user_error(
            "the model folder is not empty",
            path=save_model,
            fix="pass --resume to continue its training, --overwrite, or another folder",
        )


def _train_model(
    vol: np.ndarray,
    ratio: float,
    config: SelfNetConfig,
    *,
    device: torch.device,
    save_model: Path | None,
    resume: bool,
    time_limit_s: float | None,
    seed: int,
    progress: ProgressFn | None,
    path: object,
) -> SelfNetModel:
    data = SelfNetData.from_stack(vol, ratio, match_blur=config.match_blur)
    patch = data.fitting_patch(config.patch)
    if patch != config.patch:
        log.info(
            "Self-Net: %d-pixel patches for this small stack (isotropic grid %s) instead of %d",
            patch,
            "×".join(map(str, data.axial.shape)),
            config.patch,
        )
        config = config.with_changes(patch=patch)
    data.check_patch(config.patch, path)
    ckpt = None if save_model is None else save_model / CHECKPOINT_NAME
    if save_model is not None:
        save_model.mkdir(parents=True, exist_ok=True)
    t = train_selfnet(
        data,
        config,
        device=device,
        checkpoint=ckpt,
        resume=resume,
        time_limit_s=time_limit_s,
        seed=seed,
        progress=progress,
    )
    info = {
        "axial_blur_px": data.axial_blur_px,
        "steps_done": t.step,
        "complete": t.step >= config.steps,
        "training_time_s": round(t.elapsed_s, 1),
        "device": str(device),
        "history": t.history,
    }
    return SelfNetModel(t.result(), config, ratio, info)


def isotropic(
    image: Any,
    *,
    voxel_size_um: tuple[float, float, float] | None = None,
    model: str | os.PathLike | SelfNetModel | None = None,
    save_model: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    preset: str = "auto",
    config: SelfNetConfig | None = None,
    time_limit_min: float | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: ProgressFn | None = None,
    inference_progress: ProgressFn | None = None,
) -> Image:
    """Restore isotropic resolution with Self-Net trained on ``image`` itself (or a saved model).

    Parameters
    ----------
    image : path, Image or (Z, Y, X) ndarray
        An anisotropic stack: z voxel size ``ratio`` (≥ 1.2) times the lateral one.
    voxel_size_um : (z, y, x) floats, optional
        Overrides the file's voxel size; required for an array.
    model : path or SelfNetModel, optional
        A trained model (``save_model`` of an earlier call) instead of training on ``image``;
        its anisotropy ratio must match ``image``'s within 10 %.
    save_model : path, optional
        Folder to keep the trained model and the training checkpoint in.
    resume : bool
        Continue the training checkpointed in ``save_model``.
    overwrite : bool
        Allow a non-empty ``save_model`` folder to be replaced.
    preset : {"auto", "cpu", "paper"}
        Network sizes and budget (:data:`PRESETS`); ``auto`` is ``paper`` on a GPU.
    config : SelfNetConfig, optional
        Overrides ``preset``.
    time_limit_min : float, optional
        Stop training after this many minutes (this call; inference not counted).
    device : {"auto", "cpu", "cuda"}
    seed : int
        Seed of the patch sampling and the network initialisation.
    progress, inference_progress : ProgressFn, optional
        Progress of the training and of the restoration.

    Returns
    -------
    Image
        The restored ``(Z', Y, X)`` float32 stack, ``Z' = floor((Z - 1)·ratio) + 1``, with the
        lateral voxel size in all three directions, in the input's units and floored at its
        background level (:func:`restore_stack`); ``metadata["isotropic"]`` records the run.
    """
    from ..device import resolve_device
    from ..io import as_image, as_volume, source_of

    img = as_image(image, voxel_size_um=voxel_size_um, what="image", require_voxel_size=True)
    path = source_of(image)
    vol = as_volume(img, "the image", path)
    ratio = anisotropy_ratio(img.voxel_size_um, path)
    if ratio > WARN_RATIO:
        log.warning(
            "anisotropy ratio %.1f is above %.0f: Self-Net's restoration degrades there "
            "(see docs/isotropic.md)",
            ratio,
            WARN_RATIO,
        )
    dev = resolve_device(device)
    t0 = time.perf_counter()
    if model is not None:
        trained = model if isinstance(model, SelfNetModel) else load_selfnet(model)
        if abs(trained.ratio / ratio - 1.0) > _RATIO_TOLERANCE:
            raise user_error(
                f"the model was trained for anisotropy {trained.ratio:.2f}, this stack has "
                f"{ratio:.2f}",
                path=path,
                fix="train on this stack (leave out --model) or check --voxel-size",
            )
        source = str(model) if not isinstance(model, SelfNetModel) else "in memory"
    else:
        cfg = config or selfnet_config(preset, dev)
        out = None if save_model is None else Path(save_model)
        if out is not None:
            _check_model_dir(out, resume, overwrite)
        limit = None if time_limit_min is None else 60.0 * float(time_limit_min)
        trained = _train_model(
            vol,
            ratio,
            cfg,
            device=dev,
            save_model=out,
            resume=resume,
            time_limit_s=limit,
            seed=seed,
            progress=progress,
            path=path,
        )
        if out is not None:
            trained.save(out)
        source = "trained on this stack" if out is None else str(out)
    result, floor = restore_stack(trained.net, vol, ratio, device=dev, progress=inference_progress)
    record = {
        "method": "selfnet",
        "model": source,
        "anisotropy_ratio": round(ratio, 4),
        "input_voxel_size_um": list(img.voxel_size_um),
        "config": trained.config.to_dict(),
        "axial_blur_px": trained.info.get("axial_blur_px"),
        "background_floor": round(floor, 6),
        "steps_done": trained.info.get("steps_done"),
        "training_complete": trained.info.get("complete"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    iso_voxel = isotropic_voxel_size(img.voxel_size_um)
    restored_image = img.with_data(result, voxel_size_um=iso_voxel, axes="ZYX")
    restored_image.metadata["isotropic"] = record
    return restored_image
