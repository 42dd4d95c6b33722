"""Screenshots of the napari plugin for docs/napari.md, from real runs on the demo data.

Opens a napari window, adds the plugin's sample data (the demo's simulated confocal stack, its
ground truth and beads), runs each widget as a user would (the same thread workers, progress and
results) and saves a screenshot of the window after each:

    docs/images/napari_psf.png         PSF from the demo beads: used/rejected beads, QC figure
    docs/images/napari_deconvolve.png  rl-accel with that PSF, beside the input (grid view)
    docs/images/napari_train.png       a short training run from the beads, live loss
    docs/images/napari_compare.png     compare: result layers side by side + ranked table
    docs/images/napari_isotropic.png   Self-Net on the demo sample, xz view beside the input

Needs the napari extra and a display; headless, run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/napari_screenshots.py

About three minutes on 2 CPU cores (the training runs are kept short: the U-Net's shows the
live loss, not a useful model; Self-Net's is 300 steps of the CPU preset).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"
WINDOW = (1700, 1000)

#: a short training run for the picture (the widget's "more options" field)
TRAIN_OPTIONS = (
    '{"net": {"base_channels": 8, "depth": 2}, "patch": [16, 32, 32], '
    '"pool_shape": [24, 64, 64], "n_phantoms": 4, "val_every": 10}'
)


def wait(app, widget, timeout_s: float = 600.0) -> None:
    t0 = time.monotonic()
    while widget.running:
        app.processEvents()
        time.sleep(0.02)
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{widget.title} did not finish in {timeout_s} s")
    for _ in range(20):  # let the layers and the widget repaint
        app.processEvents()
        time.sleep(0.02)


def shoot(viewer, app, name: str) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()  # napari's own notices (e.g. about PyQt5) would cover the canvas
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)
    path = OUT / name
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path.relative_to(REPO)}")


def dock(viewer, name: str):
    dock_widget, widget = viewer.window.add_plugin_dock_widget("neurodecon", name)
    return dock_widget, widget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--isotropic-steps", type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="neurodecon_shots_"))
    # napari's settings in a throw-away file, never the user's
    os.environ["NAPARI_CONFIG"] = str(tmp / "napari_settings.yaml")
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="NeuroDecon in napari")
    app = QApplication.instance()
    viewer.window._qt_window.resize(*WINDOW)
    viewer.open_sample("neurodecon", "demo_stack")
    viewer.open_sample("neurodecon", "demo_beads")

    # 1. PSF from the beads
    psf_dock, psf_w = dock(viewer, "PSF from beads")
    psf_w.beads.value = viewer.layers["demo beads"]
    psf_w.method.value = "average"  # the crop-and-average method rejects beads: shows the points
    psf_w.figure.value = tmp / "beads_qc.png"
    psf_w.start()
    wait(app, psf_w)
    for layer in viewer.layers:
        layer.visible = layer.name in (
            "demo beads",
            "beads used (demo beads)",
            "beads rejected (demo beads)",
        )
    viewer.dims.ndisplay = 3  # seen from above: every bead of the stack and its marker
    viewer.layers["demo beads"].rendering = "mip"
    viewer.reset_view(layers=[viewer.layers["demo beads"]])
    shoot(viewer, app, "napari_psf.png")
    viewer.dims.ndisplay = 2
    viewer.window.remove_dock_widget(psf_dock)

    # 2. Deconvolve the sample with that PSF
    dec_dock, dec_w = dock(viewer, "Deconvolve")
    dec_w.image.value = viewer.layers["demo sample"]
    dec_w.psf.value = viewer.layers["PSF (demo beads)"]
    dec_w.method.value = "rl-accel"
    dec_w.iterations.value = 16
    dec_w.start()
    wait(app, dec_w)
    for layer in viewer.layers:
        layer.visible = layer.name in ("demo sample", dec_w.result_name)
    viewer.canvas.grid.enabled = True
    viewer.reset_view(layers=[viewer.layers["demo sample"]])
    shoot(viewer, app, "napari_deconvolve.png")
    viewer.window.remove_dock_widget(dec_dock)
    viewer.canvas.grid.enabled = False

    # 3. Train from the beads (short)
    tr_dock, tr_w = dock(viewer, "Train a model")
    tr_w.beads.value = viewer.layers["demo beads"]
    tr_w.bead_method.value = "average"
    tr_w.output.value = tmp / "model"
    tr_w.steps.value, tr_w.time_limit.value = args.train_steps, 0
    tr_w.device.value = "cpu"
    tr_w.more_options.value = TRAIN_OPTIONS
    tr_w.start()
    while tr_w.running and len(tr_w.history) < args.train_steps * 2 // 3:
        app.processEvents()
        time.sleep(0.02)
    for layer in viewer.layers:
        layer.visible = layer.name == "demo beads"
    viewer.reset_view(layers=[viewer.layers["demo beads"]])
    shoot(viewer, app, "napari_train.png")  # mid-run: progress bar and live loss
    wait(app, tr_w)
    viewer.window.remove_dock_widget(tr_dock)

    # 4. Compare methods, with the ground truth
    cmp_dock, cmp_w = dock(viewer, "Compare methods")
    cmp_w.image.value = viewer.layers["demo sample"]
    cmp_w.psf.value = viewer.layers["PSF (demo beads)"]
    cmp_w.truth.value = viewer.layers["demo truth"]
    cmp_w.methods.value = ["wiener", "rl", "rl-accel", "model:default"]
    cmp_w.output.value = tmp / "report"
    cmp_w.start()
    wait(app, cmp_w)
    shown = {layer.name for layer in cmp_w.result_layers} | {"demo sample"}
    for layer in viewer.layers:
        layer.visible = layer.name in shown
    viewer.reset_view(layers=[viewer.layers["demo sample"]])
    shoot(viewer, app, "napari_compare.png")
    print(f"compare report: {cmp_w.summary['report']}")
    viewer.window.remove_dock_widget(cmp_dock)
    viewer.canvas.grid.enabled = False

    # 5. Isotropic restoration of the sample (Self-Net trained on it), seen in xz
    iso_dock, iso_w = dock(viewer, "Isotropic restoration")
    iso_w.image.value = viewer.layers["demo sample"]
    iso_w.preset.value, iso_w.device.value = "cpu", "cpu"
    iso_w.steps.value = args.isotropic_steps
    iso_w.start()
    wait(app, iso_w)
    for layer in viewer.layers:
        layer.visible = layer.name in ("demo sample", iso_w.result_name)
    viewer.dims.order = (1, 0, 2)  # z down, x across: the axial view
    viewer.canvas.grid.enabled = True
    viewer.reset_view(layers=[viewer.layers["demo sample"]])
    shoot(viewer, app, "napari_isotropic.png")
    viewer.close()


if __name__ == "__main__":
    main()
