"""The Isotropic widget end to end in a real viewer: Self-Net result on the isotropic grid,
a saved model reused, cancel, errors as one notification."""

import json

import numpy as np
import pytest

TIMEOUT_MS = 120_000

#: a Self-Net training of a few seconds (the unit tests' tiny networks)
TINY = {"channels": 4, "blocks": 1, "disc_channels": 4, "patch": 16, "batch": 2}


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


@pytest.fixture
def sample(viewer, demo_quick):
    # the demo sample: 24 × 64 × 64 at 0.1 × 0.05 × 0.05 µm, anisotropy 2
    vs = demo_quick["voxel_size_um"]
    return viewer.add_image(demo_quick["sample"], name="sample", scale=vs, translate=(0, 1, 2))


@pytest.fixture
def widget(viewer, sample):
    from neurodecon.napari._isotropic_widget import IsotropicWidget

    w = IsotropicWidget(viewer)
    w.image.value, w.device.value = sample, "cpu"
    w.more_options.value = json.dumps(TINY)
    return w


def test_result_on_the_isotropic_grid_then_the_saved_model_reused(
    viewer, sample, widget, qtbot, tmp_path, notifications
):
    reports = []
    widget.on_progress = lambda done, total, message: reports.append((done, total, message))
    widget.steps.value, widget.save_model.value = 6, tmp_path / "selfnet"
    widget.start()
    wait(qtbot, widget)
    assert notifications == []
    out = viewer.layers["sample isotropic"]
    assert out.data.shape == (47, 64, 64) and out.data.dtype == np.float32  # (24 - 1)·2 + 1
    np.testing.assert_allclose(out.scale, (0.05, 0.05, 0.05))
    np.testing.assert_allclose(out.translate, sample.translate)
    record = widget.result.metadata["isotropic"]
    assert record["steps_done"] == 6 and record["anisotropy_ratio"] == pytest.approx(2.0)
    assert record["config"]["channels"] == 4  # the JSON options reached the configuration
    assert "anisotropy 2.00 restored to 0.05 µm voxels, 6 training steps" in widget.status.value
    # the bar saw the training's steps, then the restoration's planes
    assert (6, 6) in {(d, t) for d, t, _ in reports} and reports[-1][0] == reports[-1][1] > 6
    # planes 0, 2, 4, … of the result lie on the input's planes: the same structures
    raw = np.asarray(sample.data, np.float32)
    assert np.corrcoef(out.data[::2].ravel(), raw.ravel())[0, 1] > 0.8
    first = np.array(out.data)
    viewer.layers.remove(out)

    widget.source.value = "saved model"
    widget.model_dir.value = tmp_path / "selfnet"
    widget.start()
    wait(qtbot, widget)
    assert notifications == []
    np.testing.assert_allclose(viewer.layers["sample isotropic"].data, first, atol=1e-4)


def test_cancel_adds_no_layer(viewer, widget, qtbot, notifications):
    widget.steps.value = 100_000
    widget.start()
    qtbot.waitUntil(lambda: widget.progress_bar.value >= 1, timeout=TIMEOUT_MS)
    widget.cancel()
    wait(qtbot, widget)
    assert ("info", "Isotropic: cancelled") in notifications
    assert [layer.name for layer in viewer.layers] == ["sample"]


def test_errors_are_one_notification_each(viewer, widget, qtbot, notifications):
    flat = viewer.add_image(np.ones((8, 32, 32), np.float32), name="flat", scale=(0.1, 0.1, 0.1))
    widget.image.value = flat  # already isotropic: nothing to restore
    widget.start()
    wait(qtbot, widget)
    widget.image.value = viewer.layers["sample"]
    widget.more_options.value = '{"depth": 3}'  # not a Self-Net option
    widget.start()
    wait(qtbot, widget)
    widget.source.value = "saved model"  # and no folder chosen
    widget.start()
    assert [s for s, _ in notifications] == ["error"] * 3, notifications
    assert (
        "isotropic" in notifications[0][1]
        and "unknown Self-Net options: depth" in (notifications[1][1])
    )
    assert "no saved model chosen" in notifications[2][1]
    assert all("\n" not in text for _, text in notifications)
    assert [layer.name for layer in viewer.layers] == ["sample", "flat"]
