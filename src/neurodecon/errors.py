"""User-facing errors and the command line's exit codes.

Every mistake a user can make (missing file, wrong dimensionality, NaN values, a PSF that does
not fit the image, ...) raises :class:`NeuroDeconError` with a one-line message that names the
file (when there is one), the problem and the fix. The CLI prints that line and exits with the
error's :attr:`~NeuroDeconError.exit_code`, without a traceback. Faults of the machine rather than
the input (memory, a full disk, a folder that cannot be written) are subclasses with their own
exit codes (:data:`EXIT_CODES`). Programming errors keep raising ordinary Python exceptions.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "NeuroDeconError",
    "NotEnoughMemoryError",
    "DiskFullError",
    "WriteDeniedError",
    "Interrupted",
    "os_error",
    "user_error",
]

#: Exit codes of the ``neurodecon`` command (also listed in the README).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: rerun with -v and report the traceback)",
    2: "user mistake: bad input file, option or output name",
    3: "not enough memory (estimated before computing, or the system ran out)",
    4: "disk full or quota exceeded while writing",
    5: "permission denied or read-only file system while writing",
    130: "interrupted (Ctrl-C, SIGINT)",
    143: "terminated (SIGTERM)",
}


class NeuroDeconError(Exception):
    """A problem with the user's input or request, explained in one line."""

    exit_code = 2


class NotEnoughMemoryError(NeuroDeconError):
    """The work needs more memory than the machine has (checked before allocating)."""

    exit_code = 3


class DiskFullError(NeuroDeconError):
    """Writing failed because the disk (or the quota) is full."""

    exit_code = 4


class WriteDeniedError(NeuroDeconError):
    """Writing failed: no permission, or a read-only file system."""

    exit_code = 5


class Interrupted(BaseException):
    """Raised from a SIGTERM handler so that temporary files are removed on the way out.

    A ``BaseException`` like :class:`KeyboardInterrupt`, so that ``except Exception`` blocks do
    not swallow it.
    """

    exit_code = 143


def user_error(
    problem: str,
    *,
    path: object | None = None,
    fix: str | None = None,
    kind: type[NeuroDeconError] = NeuroDeconError,
) -> NeuroDeconError:
    """Build a :class:`NeuroDeconError` (or ``kind``) whose message reads ``PATH: problem. fix``.

    Examples
    --------
    >>> str(user_error("file not found", path="a.tif", fix="check the path"))
    'a.tif: file not found. check the path.'
    >>> user_error("needs 9 GB", kind=NotEnoughMemoryError).exit_code
    3
    """
    msg = problem.rstrip(".")
    if path is not None:
        msg = f"{path}: {msg}"
    if fix:
        msg = f"{msg}. {fix.rstrip('.')}."
    else:
        msg = f"{msg}."
    return kind(msg)


def os_error(exc: OSError, path: object | None = None) -> NeuroDeconError | None:
    """Explain an operating-system failure while writing in one line; None if it is none of ours.

    Disk full or quota exceeded (``ENOSPC``, ``EDQUOT``, ``EFBIG``, and the short write that numpy
    and tifffile report as "N requested and M written") → :class:`DiskFullError`; no permission
    or a read-only file system (``EACCES``, ``EPERM``, ``EROFS``) → :class:`WriteDeniedError`.

    Examples
    --------
    >>> import errno
    >>> os_error(OSError(errno.ENOSPC, "No space left on device"), "out.tif").exit_code
    4
    >>> os_error(OSError("65536 requested and 51000 written"), "out.tif").exit_code
    4
    >>> os_error(OSError(errno.EIO, "I/O error")) is None
    True
    """
    import errno

    where = path if path is not None else getattr(exc, "filename", None)
    full = {errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG}
    short_write = exc.errno is None and "requested and" in str(exc) and "written" in str(exc)
    if exc.errno in full or short_write:
        return user_error(
            "the disk is full (or the quota is used up); nothing was written",
            path=where,
            fix="free some space or write the output to another disk",
            kind=DiskFullError,
        )
    if exc.errno == errno.EROFS:
        return user_error(
            "the file system is read-only; nothing was written",
            path=where,
            fix="write the output to a folder on a writable disk",
            kind=WriteDeniedError,
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return user_error(
            "permission denied while writing; nothing was written",
            path=where,
            fix="choose a folder you can write to, or change its permissions",
            kind=WriteDeniedError,
        )
    return None
