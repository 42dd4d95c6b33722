"""``deconvolve_blocked``: any method over a volume larger than memory, into an OME-Zarr."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn
from ._cluster import cluster_client
from ._global import auto_iterations, global_regularization, representative_crops
from ._plan import BlockPlan, fit_block, plan_blocks
from ._run import run_tasks
from ._summary import frame_summary
from ._tasks import DONE_DIR, BlockTask, ClassicalRunner, block_bytes

__all__ = [
    "deconvolve_blocked",
    "BlockedRun",
    "incomplete_path",
    "block_bytes",
    "whole_volume_fits",
]

log = logging.getLogger("neurodecon")

#: Share of the available memory one block may be sized for (divided among parallel workers);
#: the rest is for the region read, the output, allocator slack and the libraries' caches.
BUDGET_FRACTION = 0.35
#: Methods refused in blocks: the Wiener filter's noise and signal spectra are estimated from the
#: data it filters, so each block gets another filter (measured: 0.69 relative L2 to the
#: whole-volume result on a widefield case, bench_blocked.py methods).
NOT_BLOCKED = ("wiener",)


@dataclass
class BlockedRun:
    """What a blocked run did: the output, the plan, the global decisions, the time."""

    output: Path
    plan: BlockPlan
    parameters: dict[str, Any]
    blocks_run: int
    blocks_skipped: int
    seconds: float
    memory_per_block_bytes: int
    levels: int = 1
    notes: list[str] = field(default_factory=list)


def whole_volume_fits(
    path: str | Path, method: str = "rl", *, voxel_size_um: Any = None, model: Any = None
) -> bool:
    """Tell whether deconvolving the stack at ``path`` whole is predicted to fit in memory.

    Reads only the metadata: the stack twice in float32 (data and result) plus the method's
    FFT grid for a typical PSF (with ``model``, a trained network: ``predict``'s channels, its
    RL_K and one tile), against 80 % of the memory available.
    """
    from ..classical import deconvolution_bytes
    from ..io import open_lazy
    from ..memory import available_bytes

    with open_lazy(path, voxel_size_um=voxel_size_um) as lazy:
        if model is not None:
            from ._model_runner import whole_predict_bytes

            frame = whole_predict_bytes(model, lazy.spatial_shape)
        else:
            frame = deconvolution_bytes(lazy.spatial_shape, (32, 64, 64), method=method)
        need = lazy.nbytes_float32 * 2 + frame
    avail = available_bytes()
    return avail is None or need < 0.8 * avail


def incomplete_path(output: str | Path) -> Path:
    """Where a run writes until every block is done (``OUT.incomplete``, then renamed)."""
    out = Path(output)
    return out.with_name(out.name + ".incomplete")


def _open_source(source: Any, voxel_size_um: Any) -> tuple[Any, Any, tuple[int, ...], str, Any]:
    """Return ``(what to read, voxel size, shape, axes, what tasks get: a path or the array)``."""
    from ..io import default_axes, open_lazy

    if isinstance(source, str | Path):
        lazy = open_lazy(source, voxel_size_um=voxel_size_um)
        return lazy, lazy.voxel_size_um, lazy.shape, lazy.axes, str(source)
    arr = np.asarray(source)
    axes = default_axes(arr.ndim) if 3 <= arr.ndim <= 5 else None
    if axes is None:
        raise user_error(f"a blocked run needs a (T, C,) Z, Y, X stack, got shape {arr.shape}")
    return arr, tuple(voxel_size_um or (1.0, 1.0, 1.0)), arr.shape, axes, arr


def deconvolve_blocked(
    source: Any,
    output: str | Path,
    psf: np.ndarray | None = None,
    method: str = "rl",
    *,
    model: Any = None,
    iterations: int | str = 50,
    background: float | str = 0.0,
    regularization: float | None = None,
    boundary: str = "unknown",
    initial: str = "flat",
    background_mode: str = "model",
    voxel_size_um: Sequence[float] | None = None,
    block: Sequence[int] | None = None,
    halo: Sequence[int] | None = None,
    threads: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    progress: ProgressFn | None = None,
    provenance: dict[str, Any] | None = None,
) -> BlockedRun:
    """Deconvolve ``source`` block by block into the OME-Zarr ``output``; never whole in memory.

    Parameters
    ----------
    source : path or (..., Z, Y, X) ndarray
        An OME-Zarr or TIFF read lazily (other formats are read whole), or an array.
    output : path
        An ``.ome.zarr`` to create. It is written as ``OUT.incomplete`` and renamed when every
        block is done, with its multiscale pyramid.
    psf : (z, y, x) ndarray
        The PSF at the image's voxel size (e.g. ``neurodecon.psf.resolve_psf(...).psf``).
    model : path or Model, optional
        A trained NeuroDecon network instead of a PSF and a method (``"default"``: the shipped
        one): each block runs ``neurodecon.learn.predict``'s pieces with the normalisation and
        the RL_K settings decided once per frame (``_model_runner``). A bioimage.io package
        made elsewhere is refused.
    method, iterations, background, regularization, boundary, initial, background_mode
        As :func:`neurodecon.classical.deconvolve`. ``background="auto"``, the flat start's level
        and ``iterations="auto"`` are decided once for the whole volume (``_global``), so
        blocks agree; the boundary model applies only at the volume's real edges.
    block : (z, y, x), optional
        The core of a block; default the largest (up to 96×512×512) whose predicted memory fits
        half the memory available, divided among the parallel workers.
    halo : (z, y, x), optional
        Voxels read around each core; default from the PSF's support (``default_halo``); for a
        model, RL_K's halo plus the network's context. With a model, cores and halos are
        rounded up to the network's size multiple.
    threads : int
        Blocks processed at once in this process (each uses torch's own threads).
    workers, scheduler
        ``workers=N``: a local ``dask.distributed`` cluster of N single-threaded processes;
        ``scheduler="ADDRESS"``: an existing cluster (``tcp://host:8786``). Its workers must
        see ``source`` and ``output`` at the same paths.
    resume : bool
        Continue an interrupted run (``OUT.incomplete``): finished blocks are skipped; the
        run's parameters must be the same.
    progress : callable, optional
        ``progress(done, total, message)`` per block; returning ``False`` cancels (the
        incomplete store stays for ``resume``).
    """
    t0 = time.perf_counter()
    method, requested = _check_request(psf, method, model, iterations)
    out = Path(output)
    partial = _check_output(out, resume, overwrite)
    options = {
        "background": background,
        "regularization": regularization,
        "boundary": boundary,
        "initial": initial,
        "background_mode": background_mode,
        "device": device,
    }
    src, voxel, shape, axes, path = _open_source(source, voxel_size_um)
    with contextlib.closing(src) if hasattr(src, "close") else contextlib.nullcontext():
        runner: Any
        if model is not None:
            from ._model_runner import decide_model

            runner, params = decide_model(src, shape, model, voxel, device=device)
        else:
            psf = np.asarray(psf, np.float32)
            runner, params = _decide(src, shape, psf, method, requested, options)
        n_parallel = max(1, workers or threads or 1)
        m = runner.multiple
        halo3 = _multiple(tuple(halo) if halo is not None else runner.default_halo(), m)
        core = _multiple(_choose_core(block, shape, halo3, runner, n_parallel), m)
        plan = plan_blocks(shape, core=core, halo=halo3)
        params.update(block_core=list(plan.core), halo=list(plan.halo),
                      voxel_size_um=[float(v) for v in voxel])  # fmt: skip
        done = _prepare_store(partial, plan, axes, voxel, params, provenance)
        task_source = path if (workers or scheduler) else src  # other processes open the path
        tasks = [BlockTask(task_source, voxel, str(partial), b, runner.for_block(b))
                 for b in plan.blocks if b.name not in done]  # fmt: skip
        mem = runner.block_bytes(plan.read_shape)
        log.info(
            f"{len(plan.blocks)} blocks of {'×'.join(map(str, plan.core))} (halo "
            f"{'×'.join(map(str, plan.halo))}), {len(done)} already done; about "
            f"{mem / 1e9:.2f} GB per block, {n_parallel} at once"
        )
        with cluster_client(workers, scheduler) as client:
            run_tasks(tasks, threads=threads, client=client, progress=progress,
                      already_done=len(done))  # fmt: skip
    levels = _finish(partial, out, overwrite)
    seconds = time.perf_counter() - t0
    return BlockedRun(out, plan, params, len(tasks), len(done), seconds, mem, levels)


def _decide(
    src: Any, shape: tuple[int, ...], psf: np.ndarray, method: str, requested: Any, options: dict
) -> tuple[ClassicalRunner, dict[str, Any]]:
    """Make the global decisions once; return the block runner and the run's parameters."""
    from ..classical import DIRECT_METHODS, ITERATIVE_METHODS

    summary = frame_summary(src, shape, background_maps=isinstance(options["background"], str))
    b = summary.background(options["background"])
    level = summary.flat_level(b, method)
    if options["regularization"] is None and method in DIRECT_METHODS:
        sample = summary.volume
        if sample is None:
            sample = representative_crops(src, shape)
        options = {**options, "regularization": global_regularization(sample, psf, method, b)}
        del sample
    count = requested if isinstance(requested, int) else 0
    iterative = method in ITERATIVE_METHODS
    if requested == "auto" and iterative:
        count = auto_iterations(src, shape, psf, method, {**options, "background": b})
    start = level if options["initial"] == "flat" else None
    runner = ClassicalRunner(psf, method, count, b, options["regularization"],
                             options["boundary"], options["initial"],
                             options["background_mode"], start, options["device"])  # fmt: skip
    params = {
        "method": method,
        "iterations": count if iterative else None,
        "iterations_requested": requested,
        "background": b,
        "background_requested": options["background"],
        "flat_level": level,
        "global_decisions": summary.describe(),
        **{k: options[k] for k in ("boundary", "initial", "background_mode", "regularization")},
        "psf_shape": list(psf.shape),
        "psf_sha1": runner.key[:12],
    }
    return runner, params


def _check_output(out: Path, resume: bool, overwrite: bool) -> Path:
    if not out.name.lower().endswith(".zarr"):
        raise user_error(
            "a blocked run writes an OME-Zarr", path=out, fix="name the output OUT.ome.zarr"
        )
    if out.exists() and not overwrite:
        raise user_error(
            "output already exists", path=out, fix="choose another name or --overwrite"
        )
    partial = incomplete_path(out)
    if partial.exists() and not resume:
        if not overwrite:
            raise user_error(
                "an interrupted run left this incomplete output",
                path=partial,
                fix="pass --resume to continue it, or --overwrite to start again",
            )
        shutil.rmtree(partial)
    if resume and not partial.exists():
        log.info(f"{partial}: nothing to resume; starting a new run")
    return partial


def _check_request(psf: Any, method: str, model: Any, iterations: Any) -> tuple[str, Any]:
    """Check the method (or that a model comes without a PSF); return it and the iterations."""
    from ..classical import check_method, parse_iterations

    if model is not None:
        if psf is not None:
            raise user_error("give either a PSF or a trained model, not both")
        return "model", None
    if psf is None:
        raise user_error("a blocked run needs a PSF or a trained model", fix="pass psf= or model=")
    method = check_method(method)
    if method in NOT_BLOCKED:
        raise user_error(
            f"{method} cannot run in blocks yet: its filter follows the spectrum of the data it "
            "sees, so blocks would disagree",
            fix="use tikhonov, rl, rltv or landweber, or deconvolve a volume that fits whole",
        )
    return method, parse_iterations(iterations)


def _multiple(sizes: Sequence[int], m: int) -> tuple[int, int, int]:
    """Round ``sizes`` up to multiples of ``m`` (a network's: blocks start on its grid)."""
    z, y, x = (-(-int(v) // m) * m for v in sizes)
    return (z, y, x)


def _choose_core(block, shape, halo3, runner, n_parallel) -> tuple[int, int, int]:  # noqa: ANN001
    from ..memory import available_bytes

    if block is not None:
        z, y, x = (int(v) for v in block)
        if min(z, y, x) < 1:
            raise user_error(f"--block sizes must be positive, got {tuple(block)}")
        return (z, y, x)
    budget = BUDGET_FRACTION * (available_bytes() or 8 << 30) / n_parallel
    return fit_block(shape[-3:], halo3, runner.block_bytes, budget)


def _prepare_store(
    partial: Path, plan: BlockPlan, axes: str, voxel: Any, params: dict, provenance: Any
) -> set[str]:
    """Create the incomplete store (or check the one to resume); return finished block names."""
    import zarr

    from ..io import create_ome_zarr

    key = json.loads(json.dumps(params, default=str))
    if partial.exists():
        attrs: Any = zarr.open_group(str(partial), mode="r").attrs.asdict().get("neurodecon")
        if not isinstance(attrs, dict) or attrs.get("run") != key:
            raise user_error(
                "the interrupted run used other parameters or another PSF",
                path=partial,
                fix="resume with the same options, or pass --overwrite to start again",
            )
        return {p.name for p in (partial / DONE_DIR).iterdir()}
    extra = {**(provenance or {}), "run": key, "status": "incomplete"}
    create_ome_zarr(partial, shape=plan.shape, chunks=plan.chunks, axes=axes, voxel_size_um=voxel,
                    extra=extra)  # fmt: skip
    (partial / DONE_DIR).mkdir()
    return set()


def _finish(partial: Path, out: Path, overwrite: bool) -> int:
    """Pyramid, status ``complete``, markers removed, renamed to ``out``; return the levels."""
    import zarr

    from ..io import add_pyramid

    levels = add_pyramid(partial)
    root = zarr.open_group(str(partial), mode="r+")
    recorded: Any = root.attrs.asdict().get("neurodecon")
    nd = dict(recorded) if isinstance(recorded, dict) else {}
    nd["status"] = "complete"
    root.attrs.update({"neurodecon": nd})
    shutil.rmtree(partial / DONE_DIR, ignore_errors=True)
    if out.exists() and overwrite:
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    partial.replace(out)
    return levels
