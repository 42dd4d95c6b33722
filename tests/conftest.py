"""Shared test fixtures. Real data live in ../shared/data beside the checkout (read-only)."""

from __future__ import annotations

import importlib
import logging
import os
import sys
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
#: the same tiny training as `neurodecon.learn.train` options (a few seconds on 2 cores)
TINY_TRAIN = {
    "patch": (8, 16, 16),
    "pool_shape": (16, 32, 32),
    "n_phantoms": 2,
    "phantoms": ("ellipsoids",),
    "batch": 2,
    "val_crops": 2,
    "photons": (1000.0,),
    "device": "cpu",
    "bf16": False,
}
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


# ---- the napari plugin's tests (tests/napari) ----------------------------------------------
# They skip with a reason without the extra or a display. The extra: ``pip install -e
# ".[napari]"`` (``make test`` installs it). A display: pytest-xvfb (in the extra) starts an Xvfb
# server for the session when the ``Xvfb`` program exists (``apt-get install xvfb``; ``make
# test`` installs it when run as root on Debian/Ubuntu). Tests that only read files or check the
# manifest run without a display. CI sets ``NEURODECON_REQUIRE_NAPARI=1`` (``.ci/run``): a
# missing extra or display then fails instead. (Not a tests/napari/conftest.py: a second module
# called ``conftest`` would shadow this one for the tests' ``from conftest import ...``.)

REQUIRE_NAPARI = os.environ.get("NEURODECON_REQUIRE_NAPARI", "") not in ("", "0")


def _missing_extra() -> str | None:
    # `napari.viewer`, not `napari`: without the extra, the folder tests/napari can be imported
    # as a namespace package called `napari` (this file's folder is on sys.path)
    for module in ("napari.viewer", "magicgui", "npe2", "pytestqt", "qtpy.QtCore"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"the napari extra is not installed (no {module}): pip install -e '.[napari]'"
    return None


def _display_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return "QT_QPA_PLATFORM=offscreen has no OpenGL: napari cannot add layers"
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return "no display: install Xvfb (apt-get install xvfb) so that pytest-xvfb can start one"
    return None


#: fixtures that start Qt: without a display Qt aborts the process, so these tests are skipped
#: before their fixtures run
_QT_FIXTURES = {"viewer", "make_napari_viewer", "qtbot", "qapp"}
_NAPARI_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "napari")


def pytest_collection_modifyitems(config, items):
    """Skip (locally) or refuse to run (CI) what this machine cannot test, with the reason."""
    ours = [i for i in items if str(i.path).startswith(_NAPARI_TESTS + os.sep)]
    if not ours:  # nothing to check, and napari is not imported for nothing
        return
    problem = _missing_extra()
    affected = ours
    if problem is None:
        problem = _display_problem()
        affected = [i for i in ours if _QT_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if problem is None or not affected:
        return
    if REQUIRE_NAPARI:
        raise pytest.UsageError(f"{problem} (NEURODECON_REQUIRE_NAPARI is set)")
    for item in affected:
        item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture
def viewer(make_napari_viewer):
    """A real napari viewer (not shown)."""
    return make_napari_viewer()


@pytest.fixture
def notifications():
    """Messages of the napari notifications shown during the test: ``[(severity, text)]``."""
    from napari.utils.notifications import notification_manager

    seen: list[tuple[str, str]] = []

    def collect(event):
        note = event.value if hasattr(event, "value") else event
        seen.append((str(note.severity), str(note.message)))

    notification_manager.notification_ready.connect(collect)
    yield seen
    notification_manager.notification_ready.disconnect(collect)


@pytest.fixture(scope="session")
def demo_quick():
    """The demo's quick data (sample 24×64×64, beads 32×160×160, voxel 0.1×0.05×0.05 µm)."""
    from neurodecon.report import demo_data

    return demo_data(quick=True)
