"""User-facing errors.

Every mistake a user can make (missing file, wrong dimensionality, NaN values, a PSF that does
not fit the image, ...) raises :class:`NeuroDeconError` with a one-line message that names the
file (when there is one), the problem and the fix. The CLI prints that line and exits non-zero,
without a traceback. Programming errors keep raising ordinary Python exceptions.
"""

from __future__ import annotations

__all__ = ["NeuroDeconError", "user_error"]


class NeuroDeconError(Exception):
    """A problem with the user's input or request, explained in one line."""

    exit_code = 2


def user_error(
    problem: str, *, path: object | None = None, fix: str | None = None
) -> NeuroDeconError:
    """Build a :class:`NeuroDeconError` whose message reads ``PATH: problem. fix``."""
    msg = problem.rstrip(".")
    if path is not None:
        msg = f"{path}: {msg}"
    if fix:
        msg = f"{msg}. {fix.rstrip('.')}."
    else:
        msg = f"{msg}."
    return NeuroDeconError(msg)
