"""PSF, Train and Compare widgets end to end in a real viewer; the plugin from napari's menus."""

import json

import numpy as np
import pytest

TIMEOUT_MS = 60_000

#: a training run of a few seconds (the unit tests' tiny network and data)
TINY = {
    "net": {"base_channels": 4, "depth": 1},
    "patch": [8, 16, 16],
    "pool_shape": [16, 32, 32],
    "n_phantoms": 3,
    "phantoms": ["ellipsoids"],
    "batch": 2,
    "val_crops": 2,
    "seed": 3,
    "bf16": False,
    "warmup_steps": 2,
    "ssim_weight": 0.0,
    "val_every": 3,
}


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


@pytest.fixture
def beads(viewer, demo_quick):
    return viewer.add_image(demo_quick["beads"], name="beads", scale=demo_quick["voxel_size_um"])


def test_psf_from_a_bead_layer(viewer, beads, demo_quick, qtbot, tmp_path, notifications):
    from neurodecon.napari._psf_widget import PsfWidget

    w = PsfWidget(viewer)
    w.beads.value, w.method.value = beads, "average"
    w.figure.value = tmp_path / "qc.png"
    w.start()
    wait(qtbot, w)
    assert notifications == []
    psf = viewer.layers["PSF (beads)"]
    assert psf.data.ndim == 3 and abs(float(psf.data.sum()) - 1) < 1e-4
    np.testing.assert_allclose(psf.scale, demo_quick["voxel_size_um"])
    used, rejected = viewer.layers["beads used (beads)"], viewer.layers["beads rejected (beads)"]
    summary = psf.metadata["neurodecon"]
    assert len(used.data) == summary["n_used"] > 0
    assert len(rejected.data) == summary["n_rejected"] > 0
    assert set(rejected.features["reason"]) <= set(summary["rejected_by_reason"])
    np.testing.assert_allclose(rejected.scale, beads.scale)
    assert (tmp_path / "qc.png").stat().st_size > 10_000
    assert not w.preview.native.pixmap().isNull()
    assert f"{summary['n_used']} beads used" in w.status.value


def test_psf_cancel(viewer, beads, qtbot, notifications):
    from neurodecon.napari._psf_widget import PsfWidget

    w = PsfWidget(viewer)
    w.beads.value, w.method.value = beads, "joint"
    w.start()
    w.cancel()  # at the extraction's first progress report
    wait(qtbot, w)
    assert [layer.name for layer in viewer.layers] == ["beads"]
    assert ("info", "PSF from beads: cancelled") in notifications


def test_train_from_a_bead_layer_with_live_loss(viewer, beads, qtbot, tmp_path, notifications):
    from neurodecon.learn import load_model
    from neurodecon.napari._train_widget import TrainWidget

    w = TrainWidget(viewer)
    w.beads.value, w.bead_method.value = beads, "average"
    w.output.value = tmp_path / "model"
    w.steps.value, w.time_limit.value = 6, 0
    w.physics.value, w.device.value = "none", "cpu"
    w.more_options.value = json.dumps(TINY)
    w.start()
    wait(qtbot, w)
    assert [s for s, _ in notifications] == ["info"], notifications
    model = load_model(tmp_path / "model")
    assert model.config["steps_done"] == 6
    assert [h[0] for h in w.history] == [1, 2, 3, 4, 5, 6]
    assert all(loss is not None and loss > 0 for _, loss, _ in w.history)
    assert [step for step, _, val in w.history if val is not None] == [3, 6]
    assert w.live.value.startswith("step 6/6: loss") and "val PSNR" in w.live.value


def test_train_cancel_keeps_the_checkpoint(viewer, beads, qtbot, tmp_path, notifications):
    from neurodecon.napari._train_widget import TrainWidget

    w = TrainWidget(viewer)
    w.beads.value, w.bead_method.value = beads, "average"
    w.output.value = tmp_path / "model"
    w.steps.value, w.time_limit.value, w.physics.value = 1000, 0, "none"
    w.more_options.value = json.dumps({**TINY, "checkpoint_every": 1})
    w.start()
    qtbot.waitUntil(lambda: len(w.history) >= 2, timeout=TIMEOUT_MS)
    w.cancel()
    wait(qtbot, w)
    assert ("info", "Train: cancelled") in notifications
    assert (tmp_path / "model" / "checkpoint.pt").is_file()
    assert not (tmp_path / "model" / "weights.pt").exists()
    assert len(w.history) < 1000


def test_train_bad_options_are_one_notification(viewer, beads, qtbot, tmp_path, notifications):
    from neurodecon.napari._train_widget import TrainWidget

    w = TrainWidget(viewer)
    w.beads.value, w.output.value = beads, tmp_path / "m"
    w.more_options.value = "{steps: 3"
    w.start()
    assert not w.running
    assert len(notifications) == 1 and notifications[0][0] == "error"
    assert "not valid JSON" in notifications[0][1]


def test_compare_adds_ranked_result_layers(viewer, demo_quick, qtbot, tmp_path, notifications):
    from neurodecon.learn import default_model_path
    from neurodecon.napari._compare_widget import CompareWidget

    vs = demo_quick["voxel_size_um"]
    image = viewer.add_image(demo_quick["sample"], name="sample", scale=vs)
    psf = viewer.add_image(demo_quick["psf"], name="psf", scale=vs)
    truth = viewer.add_image(demo_quick["truth"], name="truth", scale=vs)
    w = CompareWidget(viewer)
    w.image.value, w.psf.value, w.truth.value = image, psf, truth
    w.methods.value = ["rl", "wiener"]
    w.model_dir.value = default_model_path()  # a model directory is compared as model:DIR
    w.iterations.value = 3
    w.output.value = tmp_path / "report"
    w.start()
    wait(qtbot, w)
    assert notifications == []
    assert (tmp_path / "report" / "report.html").is_file()
    results = w.result_layers
    assert sorted(layer.name.split()[1] for layer in results) == [
        f"model:{default_model_path()}",
        "rl",
        "wiener",
    ]
    for layer in results:
        assert layer.data.shape == image.data.shape
        np.testing.assert_allclose(layer.scale, image.scale)
    table = w.table.to_dict("split")
    assert list(table["columns"][:2]) == ["rank", "method"] and "psnr" in table["columns"]
    # methods and the raw input ranked, best first; the ground truth is not ranked
    assert [row[0] for row in table["data"]] == [1, 2, 3, 4, None]
    assert viewer.canvas.grid.enabled


def test_compare_without_psf_is_a_notification(viewer, demo_quick, qtbot, tmp_path, notifications):
    from neurodecon.napari._compare_widget import CompareWidget

    image = viewer.add_image(demo_quick["sample"], name="sample", scale=demo_quick["voxel_size_um"])
    w = CompareWidget(viewer)
    w.image.value, w.methods.value = image, ["rl"]
    w.output.value = tmp_path / "report"
    w.start()
    wait(qtbot, w)
    assert [s for s, _ in notifications] == ["error"]
    assert "need a PSF" in notifications[0][1]
    assert [layer.name for layer in viewer.layers] == ["sample"]


def test_the_plugin_from_napari(viewer, tmp_path):
    """Reader, sample data and dock widgets through napari's own plugin machinery."""
    import neurodecon as nd

    path = nd.write(
        tmp_path / "stack.ome.tif",
        nd.Image(np.ones((3, 8, 8), np.float32), voxel_size_um=(0.4, 0.2, 0.2)),
    )
    (layer,) = viewer.open(str(path), plugin="neurodecon")
    np.testing.assert_allclose(layer.scale, (0.4, 0.2, 0.2))
    layer.scale = (0.5, 0.25, 0.25)
    (saved,) = viewer.layers.save(str(tmp_path / "saved.tif"), selected=False, plugin="neurodecon")
    assert nd.read(saved).voxel_size_um == (0.5, 0.25, 0.25)
    viewer.open_sample("neurodecon", "demo_beads")
    assert viewer.layers[-1].data.shape == (32, 160, 160)
    for name in ("PSF from beads", "Deconvolve", "Train a model", "Compare methods"):
        _dock, widget = viewer.window.add_plugin_dock_widget("neurodecon", name)
        first = widget._layer_combos[0]  # image or bead stack: the viewer's image layers
        assert [c.name for c in first.choices] == [la.name for la in viewer.layers]
