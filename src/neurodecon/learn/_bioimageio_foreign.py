"""Run a bioimage.io model package made elsewhere: a 3D, one-channel restoration network.

``bioimageio.core`` runs the package with its own pre- and post-processing (its normalisation,
not NeuroDecon's), on whole volumes, or blockwise when the package's input size is
parameterised. Only packages with one input and one output, each with space axes ``z, y, x``
(plus optional batch and one-channel axes), are accepted: other layouts get one line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..device import resolve_device
from ..errors import user_error
from ..progress import ProgressFn, report
from ._bioimageio_import import is_bioimageio_package, is_neurodecon_package, quiet_unclosed_files

__all__ = ["predict_bioimageio", "is_foreign_package"]

log = logging.getLogger("neurodecon")


def is_foreign_package(path: object) -> bool:
    """Tell whether ``path`` is a bioimage.io package not written by NeuroDecon."""
    if not isinstance(path, str | Path) or path == "default":
        return False
    return is_bioimageio_package(path) and not is_neurodecon_package(path)


def _load(package: Path) -> Any:
    try:
        from bioimageio.core import load_model_description
    except ImportError as exc:
        raise user_error(
            "running a bioimage.io package needs the bioimageio extra",
            path=package,
            fix="pip install 'neurodecon[bioimageio]'",
        ) from exc
    try:
        descr = load_model_description(str(package), perform_io_checks=False)
    except Exception as exc:  # noqa: BLE001  (pydantic/IO errors of a third-party file)
        raise user_error(
            f"not a valid bioimage.io model ({type(exc).__name__}: {str(exc).splitlines()[0]})",
            path=package,
        ) from exc
    if getattr(descr, "type", None) != "model" or len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise user_error(
            "only bioimage.io models with one input and one output tensor can deconvolve",
            path=package,
        )
    return descr


def _layout(descr: Any, package: Path) -> tuple[list[str], dict[str, float]]:
    """Return the input's axis ids in order and the space axes' scales (µm when stated)."""
    axes = descr.inputs[0].axes
    ids = [str(a.id) for a in axes]
    space = [str(a.id) for a in axes if a.type == "space"]
    others = [a for a in axes if a.type not in ("space", "batch")]
    one_channel = all(a.type == "channel" and len(a.channel_names) == 1 for a in others)
    out_space = [str(a.id) for a in descr.outputs[0].axes if a.type == "space"]
    if sorted(space) != ["x", "y", "z"] or not one_channel or sorted(out_space) != sorted(space):
        raise user_error(
            f"this bioimage.io model's axes ({', '.join(ids)}) are not a 3D one-channel "
            "restoration (space axes z, y, x in and out)",
            path=package,
            fix="use a 3D restoration model, or a NeuroDecon model",
        )
    scale = {str(a.id): float(a.scale) for a in axes if a.type == "space"}
    return ids, scale


def _check_voxel(scale: dict[str, float], voxel_size_um: Any, package: Path, units: Any) -> None:
    if voxel_size_um is None or units != {"micrometer"}:
        return
    model = tuple(scale[a] for a in "zyx")
    ratio = [float(v) / m for v, m in zip(voxel_size_um, model, strict=True) if m > 0]
    if any(abs(r - 1.0) > 0.1 for r in ratio):
        log.warning(
            f"{package}: the image's voxel size {tuple(voxel_size_um)} µm differs from the "
            f"model's {model} µm by more than 10 %; resample the image first"
        )


def predict_bioimageio(
    package: str | Path,
    image: np.ndarray,
    *,
    voxel_size_um: Any = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Run a bioimage.io package on every ``(Z, Y, X)`` volume of ``image``; float32, same shape.

    Parameters
    ----------
    package : path
        A bioimage.io model package (``.zip``, or a folder with ``bioimageio.yaml``/``rdf.yaml``).
    image : (..., Z, Y, X) ndarray or neurodecon.io.Image
        Volumes in front (channels, time points) are run one after another.
    voxel_size_um : (z, y, x), optional
        Checked against the package's axis scales (a warning beyond 10 %).
    device : "auto" | "cpu" | "cuda"
    progress : callable, optional
        ``progress(done, total, message)`` per volume; return ``False`` to cancel.
    """
    package = Path(package)
    data: Any = image
    if hasattr(image, "data") and hasattr(image, "voxel_size_um"):  # a neurodecon.io.Image
        voxel_size_um = image.voxel_size_um if voxel_size_um is None else voxel_size_um
        data = image.data
    with quiet_unclosed_files():
        return _run(package, data, voxel_size_um, device, progress)


def _run(package: Path, data: Any, voxel_size_um: Any, device: str, progress: Any) -> np.ndarray:
    from bioimageio.core import create_prediction_pipeline
    from bioimageio.core import predict as bmz_predict

    descr = _load(package)
    ids, scale = _layout(descr, package)
    units = {str(a.unit) for a in descr.inputs[0].axes if a.type == "space"}
    _check_voxel(scale, voxel_size_um, package, units)
    arr = np.asarray(data, np.float32)
    vols = arr.reshape(-1, *arr.shape[-3:])
    out = np.empty(vols.shape, np.float32)
    dev = resolve_device(device)
    pipeline = create_prediction_pipeline(descr, devices=[str(dev)])
    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    for i, vol in enumerate(vols):
        report(progress, i, len(vols), f"volume {i + 1}/{len(vols)}")
        x = _arrange(vol, ids)
        sample = bmz_predict(model=pipeline, inputs={in_id: x}, blocksize_parameter=None)
        y = sample.members[out_id].data  # an xarray.DataArray
        y = y.isel({d: 0 for d in y.dims if d not in ("z", "y", "x")})
        data = np.asarray(y.transpose("z", "y", "x").values, np.float32)
        if data.shape != vol.shape:
            raise user_error(
                f"the bioimage.io model returned shape {data.shape} for an input of {vol.shape}",
                path=package,
            )
        out[i] = data
    report(progress, len(vols), len(vols), "done")
    return out.reshape(arr.shape)


def _arrange(vol: np.ndarray, ids: list[str]) -> Any:
    """``(Z, Y, X)`` → a Tensor in the package's input layout (size-1 batch, channel axes)."""
    import xarray as xr
    from bioimageio.core import Tensor

    da = xr.DataArray(vol, dims=("z", "y", "x"))
    da = da.expand_dims([a for a in ids if a not in ("z", "y", "x")]).transpose(*ids)
    return Tensor.from_xarray(da)
