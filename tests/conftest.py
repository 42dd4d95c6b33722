"""Shared test fixtures. Real data live in ../shared/data beside the checkout (read-only)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEURODECON_SHARED_DATA", REPO.parent / "shared" / "data"))

# Keep the suite predictable on a 2-core machine shared with other processes.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield


#: CI sets this (``.ci/run``): a missing ../shared/data then fails the tests that need it
#: instead of skipping them silently.
#: `neurodecon train` options of the tiny training runs the tests use (split like a shell would)
TINY_DATA_ARGS = (
    "--phantoms ellipsoids --n-phantoms 2 --pool-shape 16 32 32 --patch 8 16 16".split()
)
#: a Gaussian model PSF for `train`/`deconvolve` tests (no bead stack or file needed)
GAUSS_PSF_ARGS = (
    "--model gaussian --fwhm 0.3 0.15 0.15 --voxel-size 0.1 0.05 0.05 --psf-shape 9 9 9".split()
)


def gaussian_kernel(sigma=(1.5, 1.0, 1.0), radius=(5, 4, 4)) -> np.ndarray:
    """Return a normalised float32 Gaussian kernel (the learn tests' stand-in PSF)."""
    z, y, x = np.mgrid[
        -radius[0] : radius[0] + 1, -radius[1] : radius[1] + 1, -radius[2] : radius[2] + 1
    ]
    k = np.exp(
        -(z**2 / (2 * sigma[0] ** 2) + y**2 / (2 * sigma[1] ** 2) + x**2 / (2 * sigma[2] ** 2))
    )
    return (k / k.sum()).astype(np.float32)


REQUIRE_DATA = os.environ.get("NEURODECON_REQUIRE_DATA", "") not in ("", "0")


def missing_data(what: str) -> None:
    """Skip (locally) or fail (in CI) a test whose real data are absent."""
    if REQUIRE_DATA:
        pytest.fail(f"{what} (NEURODECON_REQUIRE_DATA is set: the real data must be present)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests needing it skip when it is absent (fail under CI)."""
    if not SHARED_DATA.is_dir():
        missing_data(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit_code, stdout, stderr)."""
    from neurodecon.cli import main

    def _run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture
def messages():
    """Messages logged by the ``neurodecon`` logger during the test (INFO and above)."""
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger, handler = logging.getLogger("neurodecon"), _Collect(level=logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)
