"""The Deconvolve widget end to end in a real viewer: result layer, cancel, errors."""

import numpy as np
import pytest

from neurodecon.learn import default_model_path

TIMEOUT_MS = 60_000


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


@pytest.fixture
def layers(viewer, demo_quick):
    vs = demo_quick["voxel_size_um"]
    image = viewer.add_image(demo_quick["sample"], name="sample", scale=vs, translate=(0, 1, 2))
    psf = viewer.add_image(demo_quick["psf"], name="psf", scale=vs)
    return image, psf


@pytest.fixture
def widget(viewer, layers):
    from neurodecon.napari._deconvolve_widget import DeconvolveWidget

    w = DeconvolveWidget(viewer)
    w.image.value, w.psf.value = layers
    return w


def test_classical_result_layer_on_the_input_scale(viewer, layers, widget, qtbot, notifications):
    image, _ = layers
    widget.method.value, widget.iterations.value = "rl", 3
    widget.start()
    wait(qtbot, widget)
    out = viewer.layers["sample rl"]
    assert out.data.shape == image.data.shape and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, image.scale)
    np.testing.assert_allclose(out.translate, image.translate)
    assert out.data.std() > image.data.std()  # sharper: more contrast than the blurred input
    assert widget.progress_bar.value == widget.progress_bar.max > 1
    assert notifications == []
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_the_shipped_model(viewer, layers, widget, qtbot, notifications):
    from neurodecon.napari._deconvolve_widget import KERNELS

    widget.kernel.value = KERNELS[1]
    assert not widget.psf.visible and not widget.method.visible
    widget.start()
    wait(qtbot, widget)
    name = f"sample {default_model_path().name} model"
    out = viewer.layers[name]
    assert out.data.shape == layers[0].data.shape
    np.testing.assert_allclose(out.scale, layers[0].scale)
    assert notifications == []


def test_cancel_stops_the_job_and_adds_nothing(viewer, widget, qtbot, notifications):
    widget.method.value, widget.iterations.value = "rl", 100_000
    n_layers = len(viewer.layers)
    widget.start()
    qtbot.waitUntil(lambda: widget.progress_bar.value >= 1, timeout=TIMEOUT_MS)
    widget.cancel()
    wait(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert widget.status.value == "cancelled"
    assert ("info", "Deconvolve: cancelled") in notifications


def test_a_user_error_becomes_one_notification(viewer, widget, qtbot, notifications):
    widget.psf.value = None
    widget.start()
    assert not widget.running
    assert len(notifications) == 1
    severity, message = notifications[0]
    assert severity == "error" and "needs a PSF layer" in message and "\n" not in message


def test_an_error_inside_the_worker_becomes_a_notification(
    viewer, layers, widget, qtbot, notifications
):
    # a PSF that is not finite passes the layer checks and fails in neurodecon
    bad = np.full((5, 5, 5), np.nan, np.float32)
    widget.psf.value = viewer.add_image(bad, name="bad psf", scale=layers[0].scale)
    widget.start()
    wait(qtbot, widget)
    assert [s for s, _ in notifications] == ["error"]
    assert "\n" not in notifications[0][1]
    assert widget.status.value == "failed"
