"""Memory checks before large allocations: say "this needs 96 GB, 12 GB are free" instead of dying.

Functions that know the size of what they are about to allocate (a PSF model, a resampled PSF,
the FFT grid of a deconvolution) estimate the bytes first and call :func:`check_memory`, which
raises :class:`~neurodecon.errors.NotEnoughMemoryError` (exit code 3) when the estimate exceeds
the memory available to this process (the smaller of the system's available memory and a
container's cgroup limit). The estimates themselves live next to the code that allocates, e.g.
:func:`neurodecon.classical.deconvolution_bytes`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NotEnoughMemoryError, user_error

__all__ = ["available_bytes", "check_memory", "format_bytes"]


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _own_cgroups() -> list[Path]:
    """Return the process's own cgroup folders (v2, v1 ``memory``), then the root ones."""
    found: list[Path] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        rel = parts[2].lstrip("/")
        if parts[0] == "0" and parts[1] == "":
            found.append(Path("/sys/fs/cgroup") / rel)
        elif "memory" in parts[1].split(","):
            found.append(Path("/sys/fs/cgroup/memory") / rel)
    return [*found, Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")]


def _page_cache(folder: Path) -> int:
    """Page cache charged to a cgroup (its ``*_file`` pages): the kernel reclaims it on demand."""
    total = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("inactive_file", "active_file"):
                total += int(value)
    except (OSError, ValueError):
        return 0
    return total


def _cgroup_available() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), None without a limit.

    Page cache (files read or written, e.g. a Zarr store's chunks) does not count as used.
    """
    for folder in _own_cgroups():
        for limit_name, usage_name in (
            ("memory.max", "memory.current"),
            ("memory.limit_in_bytes", "memory.usage_in_bytes"),
        ):
            try:
                limit = (folder / limit_name).read_text().strip()
                usage = int((folder / usage_name).read_text().strip())
            except (OSError, ValueError):
                continue
            if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
                continue
            return max(int(limit) - usage + _page_cache(folder), 0)
    return None


def _rlimit_available() -> int | None:
    """Bytes left under this process's address-space limit (``ulimit -v``, ``prlimit --as``)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        fields = Path("/proc/self/statm").read_text().split()
        used = int(fields[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(int(limit) - used, 0)


def available_bytes() -> int | None:
    """Return the memory this process can still allocate, in bytes (None when unknown).

    Linux: ``MemAvailable`` of ``/proc/meminfo``, lowered to a cgroup memory limit or to what is
    left under the process's address-space limit (``prlimit --as``) when there is one; elsewhere
    the free physical pages (``os.sysconf``), or None.
    """
    sources = (_meminfo_available(), _cgroup_available(), _rlimit_available())
    values = [v for v in sources if v is not None]
    if not values:
        try:
            values = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError, AttributeError):
            return None
    return min(values)


def format_bytes(n: float) -> str:
    """Return ``n`` bytes as text with a binary-free decimal unit.

    Examples
    --------
    >>> format_bytes(96e9), format_bytes(1.5e6), format_bytes(512)
    ('96 GB', '1.5 MB', '512 B')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(n_bytes: float, what: str, *, fix: str, path: object | None = None) -> None:
    """Refuse work whose estimated memory need exceeds what is available.

    Parameters
    ----------
    n_bytes : float
        The estimated peak memory of the work.
    what : str
        The work, as the start of a sentence ("a 2001×2001×2001 widefield PSF").
    fix : str
        What the user can do (a smaller shape, a crop, another voxel size).
    path : optional
        The file named in the message.

    Raises
    ------
    NotEnoughMemoryError
        When ``n_bytes`` exceeds :func:`available_bytes` (exit code 3 on the command line).
    """
    free = available_bytes()
    if free is None or n_bytes <= free:
        return
    raise user_error(
        f"{what} needs about {format_bytes(n_bytes)} of memory, but only "
        f"{format_bytes(free)} are available",
        path=path,
        fix=fix,
        kind=NotEnoughMemoryError,
    )
