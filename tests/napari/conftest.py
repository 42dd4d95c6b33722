"""Fixtures of the napari plugin's tests; they skip with a reason without the extra or a display.

The extra: ``pip install -e ".[napari]"`` (``make test`` installs it). A display: pytest-xvfb
(in the extra) starts an Xvfb server for the session when the ``Xvfb`` program exists
(``apt-get install xvfb``; ``make test`` installs it when run as root on Debian/Ubuntu).
Tests that only read files or check the manifest run without a display. CI sets
``NEURODECON_REQUIRE_NAPARI=1`` (``.ci/run``): a missing extra or display then fails instead.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

REQUIRE = os.environ.get("NEURODECON_REQUIRE_NAPARI", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI) when the plugin cannot be tested here."""
    if REQUIRE:
        pytest.fail(f"{reason} (NEURODECON_REQUIRE_NAPARI is set)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


# `napari.viewer`, not `napari`: without the extra, this very folder (tests/napari) can be
# imported as a namespace package called `napari`
for _module in ("napari.viewer", "magicgui", "npe2", "pytestqt", "qtpy.QtCore"):
    try:
        importlib.import_module(_module)
    except ImportError:
        _unavailable(f"the napari extra is not installed (no {_module}): pip install -e .[napari]")


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
_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    problem = _display_problem()
    if problem is None:
        return
    ours = [i for i in items if str(i.path).startswith(_HERE)]
    needs_qt = [i for i in ours if _QT_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if needs_qt and REQUIRE:
        raise pytest.UsageError(f"{problem} (NEURODECON_REQUIRE_NAPARI is set)")
    for item in needs_qt:
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
def demo():
    """The demo's quick data (sample 24×64×64, beads 32×160×160, voxel 0.1×0.05×0.05 µm)."""
    from neurodecon.report import demo_data

    return demo_data(quick=True)
