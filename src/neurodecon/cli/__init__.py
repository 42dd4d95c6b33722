"""``neurodecon`` command line: a thin layer over the Python API.

Each concept registers its sub-commands from its own module (``_io``, ``_psf``, ``_beads``,
``_simulate``, ``_metrics``, ``_classical``, ``_learn``, ``_report``). ``main`` turns every
:class:`~neurodecon.errors.NeuroDeconError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import NeuroDeconError

__all__ = ["main", "build_parser"]

_MODULES = ("_io", "_psf", "_beads", "_simulate", "_metrics", "_classical", "_learn", "_report")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``neurodecon`` argument parser with every sub-command registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="neurodecon",
        description="3D deconvolution for fluorescence microscopy "
        "(classical, bead-calibrated, learned).",
    )
    parser.add_argument("--version", action="version", version=f"neurodecon {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more logging; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    psf = sub.add_parser("psf", help="generate, inspect or extract point spread functions")
    psf_sub = psf.add_subparsers(dest="psf_command", metavar="PSF_COMMAND", required=True)
    for name in _MODULES:
        module = importlib.import_module(f".{name}", __name__)
        module.register(sub, psf_sub)
    return parser


class _OneLineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning" if record.levelno >= logging.WARNING else "info"
        print(f"{prefix}: {record.getMessage()}", file=sys.stderr)


def _setup_logging(verbose: bool) -> None:
    log = logging.getLogger("neurodecon")
    log.handlers[:] = [_OneLineHandler()]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurodecon`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        result = args.func(args)
    except NeuroDeconError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            "error: out of memory; process a smaller volume (crop it first) or use a machine "
            "with more RAM",
            file=sys.stderr,
        )
        return 3
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
