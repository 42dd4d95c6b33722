"""Method specifications for ``compare``, and running one method.

Parses ``"rl"`` / ``"model:DIR"`` / ``"model:default"`` and runs one method, timed, turning a
failure into a one-line reason instead of a crash.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import Cancelled, ProgressFn
from ._isotropic import isotropic_base, run_isotropic

_SELFNET_ONLY = ("preset", "steps", "time_limit_min", "seed")

__all__ = [
    "MethodSpec",
    "MethodResult",
    "parse_methods",
    "run_method",
    "DEFAULT_METHODS",
]

log = logging.getLogger("neurodecon")

#: Methods compared when none are named: the three classical work-horses and the shipped model.
DEFAULT_METHODS: tuple[str, ...] = ("wiener", "rl", "rltv", "model:default")


@dataclass
class MethodSpec:
    """One method to run: ``kind`` is ``"classical"``, ``"model"`` or ``"isotropic"``."""

    spec: str
    kind: str
    name: str
    label: str
    model_path: Path | None = None
    base: str | None = None  # the classical method run before Self-Net (``rl+isotropic``)


@dataclass
class MethodResult:
    """Outcome of one method: the array (or ``None`` when it failed), its timing and parameters."""

    spec: MethodSpec
    data: np.ndarray | None
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    kernel: np.ndarray | None = None  # what the result should be consistent with (PSF, model's)
    spread: np.ndarray | None = None  # a network's flip spread (``learn.predict_with_spread``)

    @property
    def ok(self) -> bool:
        return self.data is not None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "method"


def parse_methods(methods: str | list[str] | tuple[str, ...]) -> list[MethodSpec]:
    """Turn ``"rl,rltv,model:DIR"`` (or a list) into specs; unknown names are a user error."""
    from ..classical import METHODS

    items = methods.split(",") if isinstance(methods, str) else list(methods)
    specs: list[MethodSpec] = []
    for raw in (s.strip() for s in items):
        if not raw:
            continue
        iso, base = isotropic_base(raw)
        if iso:
            if base is not None and base not in METHODS:
                raise user_error(
                    f"unknown method {base!r} before +isotropic",
                    fix="use a classical method, e.g. rl+isotropic",
                )
            label = "Self-Net" if base is None else f"{base.upper()} + Self-Net"
            specs.append(MethodSpec(raw, "isotropic", raw.lower(), label, base=base))
            continue
        if raw.lower().startswith("model:"):
            target = raw[len("model:") :]
            if target in ("", "default"):
                specs.append(MethodSpec(raw, "model", "neurodecon", "NeuroDecon (shipped model)"))
            else:
                path = Path(target)
                label = "bioimage.io model" if path.suffix.lower() == ".zip" else "NeuroDecon model"
                specs.append(
                    MethodSpec(
                        raw,
                        "model",
                        _safe_name(f"model_{path.name or 'dir'}"),
                        f"{label} {path.name}",
                        model_path=path,
                    )
                )
            continue
        name = raw.lower()
        if name not in METHODS:
            raise user_error(
                f"unknown method {raw!r}",
                fix="use one of "
                + ", ".join(METHODS)
                + ", model:default, model:DIR, isotropic or NAME+isotropic",
            )
        specs.append(MethodSpec(raw, "classical", name, name.upper() if len(name) <= 5 else name))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise user_error(f"method listed twice: {', '.join(dupes)}", fix="name each method once")
    if not specs:
        raise user_error("no methods to compare", fix="pass --methods, e.g. rl,rltv,wiener")
    return specs


def _default_model_path() -> Path:
    from ..learn import default_model_path

    path = Path(default_model_path())
    if not path.exists():
        raise user_error(
            "no shipped default model in this installation",
            path=path,
            fix="train one with `neurodecon train` and pass model:DIR",
        )
    return path


def _run_classical(
    spec: MethodSpec,
    image: np.ndarray,
    psf: np.ndarray | None,
    options: dict[str, Any],
    progress: ProgressFn | None,
) -> tuple[np.ndarray, dict]:
    """Run a classical method; its parameters record what it used (from the result object)."""
    from ..classical import ITERATIVE_METHODS, deconvolve

    if psf is None:
        raise user_error(f"{spec.name} needs a PSF", fix="pass --psf, --beads or a PSF model")
    kwargs = {k: v for k, v in options.items() if v is not None}
    if spec.name not in ITERATIVE_METHODS:
        kwargs.pop("iterations", None)
    result = deconvolve(
        image, psf, method=spec.name, progress=progress, return_result=True, **kwargs
    )
    params = {"method": spec.name, **kwargs}
    if result.iterations is not None:
        params["iterations_used"] = result.iterations
    params["background_used"] = result.background
    params["boundary_used"] = result.boundary
    params["device_used"] = result.device
    if result.regularization is not None:
        params["regularization_used"] = result.regularization
    if result.auto is not None:
        params["auto"] = result.auto
    return result.data, params


def _run_model(
    spec: MethodSpec, image: np.ndarray, voxel_size_um, device: str, progress: ProgressFn | None
) -> tuple[np.ndarray, dict, np.ndarray | None, np.ndarray | None]:
    """Return a network's result (mean over its flips), parameters, kernel and flip spread."""
    from ..learn import augmentations, is_foreign_package, load_model, predict, predict_with_spread

    path = spec.model_path if spec.model_path is not None else _default_model_path()
    params: dict[str, Any] = {"model": str(path), "device": device}
    if is_foreign_package(path):  # a bioimage.io package made elsewhere: its own pipeline
        out = predict(path, image, voxel_size_um=voxel_size_um, device=device, progress=progress)
        return out, {**params, "runner": "bioimageio.core"}, None, None
    model = load_model(path)
    out, spread = predict_with_spread(
        model, image, voxel_size_um=voxel_size_um, device=device, progress=progress
    )
    params["flip_passes"] = len(augmentations(model))  # the time is theirs together
    params["flip_spread_over_signal"] = round(
        float(spread.mean()) / max(float(np.abs(out).mean()), 1e-12), 4
    )
    trained = getattr(model, "voxel_size_um", None)
    if trained is not None:
        params["model_voxel_size_um"] = [float(v) for v in trained]
    kernel = model.kernel_for(image.shape, voxel_size_um)  # what it was trained to invert
    return out, params, kernel, spread


def run_method(
    spec: MethodSpec,
    image: np.ndarray,
    *,
    psf: np.ndarray | None,
    voxel_size_um,
    options: dict[str, Any],
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> MethodResult:
    """Run one method and time it.

    Any exception except a cancellation becomes ``MethodResult(error="one line")`` so that one
    broken method does not stop the report.
    """
    t0 = time.perf_counter()
    try:
        kernel, spread = psf, None
        if spec.kind == "isotropic":
            return _timed_isotropic(spec, image, psf, voxel_size_um, options, device, progress, t0)
        if spec.kind == "model":
            out, params, kernel, spread = _run_model(spec, image, voxel_size_um, device, progress)
            kernel = psf if kernel is None else kernel  # a foreign package: the data's own PSF
        else:
            out, params = _run_classical(spec, image, psf, {**options, "device": device}, progress)
        out = np.asarray(out, dtype=np.float32)
        if out.shape != image.shape:
            raise RuntimeError(f"output shape {out.shape} differs from the input {image.shape}")
        if not np.isfinite(out).all():
            raise RuntimeError("output contains NaN/Inf values")
    except (Cancelled, KeyboardInterrupt):
        raise
    except Exception as exc:  # reported in the table, with the traceback in the debug log
        log.debug("method %s failed", spec.spec, exc_info=True)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return MethodResult(
            spec, None, time.perf_counter() - t0, {}, f"{type(exc).__name__}: {reason}"
        )
    return MethodResult(spec, out, time.perf_counter() - t0, params, kernel=kernel, spread=spread)


def _timed_isotropic(
    spec: MethodSpec,
    image: np.ndarray,
    psf: np.ndarray | None,
    voxel_size_um,
    options: dict[str, Any],
    device: str,
    progress: ProgressFn | None,
    t0: float,
) -> MethodResult:
    """Run the classical base method (if any), then Self-Net; the result is on a finer grid."""
    params: dict[str, Any] = {}
    data = image
    if spec.base is not None:
        base = MethodSpec(spec.base, "classical", spec.base, spec.base.upper())
        classical = {k: v for k, v in options.items() if k not in _SELFNET_ONLY}
        data, params = _run_classical(base, image, psf, {**classical, "device": device}, None)
    out, iso = run_isotropic(data, voxel_size_um, options, device, progress)
    if not np.isfinite(out).all():
        raise RuntimeError("output contains NaN/Inf values")
    params = {**params, "selfnet": iso}
    return MethodResult(spec, np.asarray(out, np.float32), time.perf_counter() - t0, params)
