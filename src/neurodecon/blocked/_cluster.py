"""The ``dask.distributed`` side: a local cluster (``workers=N``) or an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import user_error

__all__ = ["cluster_client"]

log = logging.getLogger("neurodecon")


@contextlib.contextmanager
def cluster_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (or None: blocks run in this process).

    ``workers=N`` starts a local cluster of N single-threaded worker processes (closed at the
    end); ``scheduler`` connects to a running one. Without ``distributed`` installed: one line.
    """
    if not workers and not scheduler:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise user_error(
            "running on a Dask cluster needs dask.distributed",
            fix="pip install 'neurodecon[cluster]'",
        ) from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise user_error(
                f"cannot reach the Dask scheduler at {scheduler} ({exc})",
                fix="check the address (tcp://HOST:8786) and that the scheduler is running",
            ) from exc
        with client:
            log.info(f"running blocks on the cluster at {scheduler}")
            yield client
        return
    n = int(workers or 1)
    if n < 1:
        raise user_error(f"--workers must be at least 1, got {n}")
    with (
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info(f"running blocks on a local Dask cluster of {n} worker processes")
        yield client
