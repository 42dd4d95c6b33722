"""``neurodecon`` command line: a thin layer over the Python API.

Each concept registers its sub-commands from its own module (``_io``, ``_psf``, ``_beads``,
``_simulate``, ``_metrics``, ``_classical``, ``_learn``, ``_report``). ``main`` turns every
failure into one line on stderr, ``error: FILE: problem. fix.``, and an exit code
(:data:`neurodecon.errors.EXIT_CODES`: 2 a user mistake, 3 not enough memory, 4 a full disk,
5 no permission to write, 130 interrupted, 143 terminated, 1 a bug); ``-v`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from .. import __version__
from ..errors import Interrupted, NeuroDeconError, os_error

__all__ = ["main", "build_parser"]

_QUIET = "no progress bar or progress lines, no info messages (warnings and errors only)"
_MODULES = (
    "_io",
    "_psf",
    "_beads",
    "_simulate",
    "_metrics",
    "_classical",
    "_learn",
    "_isotropic",
    "_export",
    "_report",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: MESSAGE. see PROG --help.`` and exit with code 2."""
        print(f"error: {message}. see '{self.prog} --help'.", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``neurodecon`` argument parser with every sub-command registered."""
    import importlib

    parser = _Parser(
        prog="neurodecon",
        description="3D deconvolution for fluorescence microscopy "
        "(classical, bead-calibrated, learned).",
    )
    parser.add_argument("--version", action="version", version=f"neurodecon {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more logging; tracebacks on errors"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=_QUIET,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    psf = sub.add_parser("psf", help="generate, inspect or extract point spread functions")
    psf_sub = psf.add_subparsers(dest="psf_command", metavar="PSF_COMMAND", required=True)
    for name in _MODULES:
        module = importlib.import_module(f".{name}", __name__)
        module.register(sub, psf_sub)
    for command in [*sub.choices.values(), *psf_sub.choices.values()]:
        if command is not psf:  # also after the command: ``neurodecon deconvolve ... -q``
            command.add_argument(
                "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=_QUIET
            )
    return parser


class _OneLineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning" if record.levelno >= logging.WARNING else "info"
        print(f"{prefix}: {record.getMessage()}", file=sys.stderr)


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    log = logging.getLogger("neurodecon")
    log.handlers[:] = [_OneLineHandler()]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a batch system's time limit) into :class:`Interrupted`.

    So the temporary output is removed on the way out, as for Ctrl-C. Only in the main thread.
    """

    def _raise(signum: int, frame: object) -> None:
        raise Interrupted("terminated")

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError)
        and ("can't allocate memory" in text or "not enough memory" in text)
    )


def _fail(message: str, code: int) -> int:
    one_line = " ".join(message.splitlines())
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    return code


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a library's warning (numpy, tifffile, ...) as one ``warning:`` line, no source."""
    print(f"warning: {' '.join(str(message).split())} ({category.__name__})", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    import warnings

    from ..io import recording_command
    from ..progress import console_options
    from ._common import check_options

    check_options(args)
    with recording_command(args.argv), console_options(quiet=args.quiet):
        with warnings.catch_warnings():
            if not args.verbose:
                warnings.showwarning = _one_line_warning
            return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurodecon`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the modules load
        return _fail("interrupted.", 130)
    args.argv = argv
    _setup_logging(args.verbose, args.quiet)
    try:
        with _sigterm_as_exception():
            return _run(args)
    except NeuroDeconError as exc:
        if args.verbose:
            raise
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted; no partial output was left behind.", 130)
    except Interrupted:
        return _fail("terminated (SIGTERM); no partial output was left behind.", 143)
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line; -v shows the rest
        if args.verbose:
            raise
        if _out_of_memory(exc):
            return _fail(
                "out of memory; process a smaller volume (crop it first) or use a machine "
                "with more RAM.",
                3,
            )
        fault = os_error(exc) if isinstance(exc, OSError) else None
        if fault is not None:
            return _fail(str(fault), fault.exit_code)
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(f"{where}{exc.strerror or exc}. check the disk and the path.", 1)
        return _fail(
            f"internal error ({type(exc).__name__}: {exc}). this is a bug: rerun with -v and "
            "report the traceback.",
            1,
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
