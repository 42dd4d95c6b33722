"""Fixtures of the napari plugin's tests; they skip with a reason without the extra or a display.

The extra: ``pip install -e ".[napari]"`` (``make test`` installs it). A display: pytest-xvfb
(in the extra) starts an Xvfb server for the session when the ``Xvfb`` program exists
(``apt-get install xvfb``; ``make test`` installs it when run as root on Debian/Ubuntu).
Tests that only read files or check the manifest run without a display.
"""

from __future__ import annotations

import os
import sys

import pytest

for _module in ("napari.viewer", "magicgui", "npe2", "pytestqt", "qtpy.QtCore"):
    pytest.importorskip(_module, reason=f"the napari extra is not installed (no {_module})")


def _display_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return "QT_QPA_PLATFORM=offscreen has no OpenGL: napari cannot add layers"
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return "no display: install Xvfb (apt-get install xvfb) so that pytest-xvfb can start one"
    return None


@pytest.fixture
def viewer(make_napari_viewer):
    """A real napari viewer (not shown); skips when no display can be had."""
    problem = _display_problem()
    if problem:
        pytest.skip(problem)
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
