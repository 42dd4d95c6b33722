"""Run block tasks: in this process (threads) or on a ``dask.distributed`` cluster.

Finished blocks leave a marker; a failed block is retried and, if it keeps failing, named in a
one-line error. Progress is reported per block through the package's progress callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from ..errors import NeuroDeconError, user_error
from ..progress import Cancelled, ProgressFn, report
from ._tasks import BlockTask, run_task

__all__ = ["run_tasks", "RETRIES"]

log = logging.getLogger("neurodecon")

#: Attempts after the first for a block that raised (a worker lost, a transient I/O error).
RETRIES = 2


def _attempt(task: BlockTask) -> str:
    """Run one block, retrying ``RETRIES`` times; a user error is not retried."""
    for attempt in range(RETRIES + 1):
        try:
            return run_task(task)
        except (NeuroDeconError, Cancelled, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001  (retried, then reported with the block's name)
            if attempt == RETRIES:
                raise RuntimeError(
                    f"block {task.block.name} failed {RETRIES + 1} times: {exc}"
                ) from exc
            log.warning(f"block {task.block.name} failed ({exc}); retrying")
    raise AssertionError("unreachable")


def _report(progress: ProgressFn | None, done: int, total: int, t0: float, n_vox: int) -> None:
    rate = n_vox / max(time.perf_counter() - t0, 1e-9)
    report(progress, done, total, f"block {done}/{total} ({rate / 1e6:.2f} Mvoxel/s)")


def run_tasks(
    tasks: Sequence[BlockTask],
    *,
    threads: int = 1,
    client: Any = None,
    progress: ProgressFn | None = None,
    already_done: int = 0,
) -> None:
    """Run ``tasks`` (in any order); raise the first block error after stopping the rest.

    ``client``: a ``dask.distributed.Client`` (its workers run the blocks, each task retried
    ``RETRIES`` times by the scheduler); otherwise ``threads`` threads of this process.
    """
    total = len(tasks) + already_done
    t0 = time.perf_counter()
    per_task = _voxels(tasks) / max(len(tasks), 1)
    report(progress, already_done, total, f"block {already_done}/{total}")
    if client is not None:
        _run_distributed(tasks, client, progress, already_done, total, t0, per_task)
        return
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        pending: set[Any] = set()
        queue = list(tasks)
        done = already_done
        try:
            while queue or pending:
                while queue and len(pending) < max(1, threads):
                    pending.add(pool.submit(_attempt, queue.pop(0)))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()
                    done += 1
                _report(progress, done, total, t0, int(per_task * (done - already_done)))
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def _voxels(tasks: Sequence[BlockTask]) -> int:
    n = 0
    for t in tasks:
        size = 1
        for s in t.block.core:
            size *= s.stop - s.start
        n += size
    return n


def _run_distributed(tasks, client, progress, already_done, total, t0, per_task) -> None:  # noqa: ANN001
    from distributed import as_completed

    futures = [
        client.submit(run_task, t, retries=RETRIES, key=f"neurodecon-{t.block.name}-{id(t)}")
        for t in tasks
    ]
    done = already_done
    try:
        for future in as_completed(futures):
            try:
                future.result()
            except NeuroDeconError:
                raise
            except Exception as exc:
                raise user_error(
                    f"a block failed on the cluster after {RETRIES + 1} attempts: {exc}",
                    fix="see the worker logs; rerun with --resume to continue",
                ) from exc
            done += 1
            _report(progress, done, total, t0, int(per_task * (done - already_done)))
    except BaseException:
        client.cancel(futures)
        raise
