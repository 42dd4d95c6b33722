"""The *Deconvolve* widget: a classical method with a PSF layer, or a trained model.

Calls :func:`neurodecon.psf.resolve_psf` (the PSF layer at the image's voxel size) and
:func:`neurodecon.deconvolve`; the result is a new layer on the input's scale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, FileEdit, LineEdit, SpinBox

from .. import deconvolve
from ..classical import METHODS
from ..errors import user_error
from ..learn import default_model_path
from ..progress import ProgressFn
from ..psf import resolve_psf
from ._jobs import JobWidget
from ._layers import image_of, volume_of
from ._options import auto_or_float, iterations_value, optional_float

__all__ = ["DeconvolveWidget", "KERNELS", "run_classical", "run_model"]

#: how the widget deconvolves: a classical method with a PSF layer, or a network
KERNELS = ("PSF layer (classical)", "shipped model", "model directory")


def run_classical(
    image: np.ndarray,
    psf: Any,
    *,
    voxel_size_um: tuple[float, float, float],
    method: str,
    progress: ProgressFn | None = None,
    **options: Any,
) -> np.ndarray:
    """Resolve ``psf`` (an Image) for the image, then :func:`neurodecon.deconvolve` with it."""
    resolved = resolve_psf(image_shape=image.shape[-3:], image_voxel_size_um=voxel_size_um, psf=psf)
    out = deconvolve(image, resolved.psf, method=method, progress=progress, **options)
    return np.asarray(out)


def run_model(
    image: np.ndarray,
    *,
    model: str,
    voxel_size_um: tuple[float, float, float],
    device: str,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """:func:`neurodecon.deconvolve` with a trained model directory."""
    out = deconvolve(
        image, model=model, voxel_size_um=voxel_size_um, device=device, progress=progress
    )
    return np.asarray(out)


class DeconvolveWidget(JobWidget):
    """Deconvolve an image layer with a classical method and a PSF layer, or with a model."""

    title = "Deconvolve"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.image = self.layer_combo("image")
        self.kernel = ComboBox(label="with", choices=KERNELS, value=KERNELS[0])
        self.psf = self.layer_combo("PSF layer", optional=True)
        self.method = ComboBox(label="method", choices=METHODS, value="rl-accel")
        self.iterations = SpinBox(label="iterations (0 = auto)", min=0, max=100_000, value=0)
        self.regularization = LineEdit(label="regularization", value="")
        self.regularization.tooltip = "empty: the method's default"
        self.background = LineEdit(label="background", value="0")
        self.background.tooltip = "camera offset / background in image units, or auto"
        self.model_dir = FileEdit(label="model directory", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.device = ComboBox(label="device", choices=("auto", "cpu", "cuda"), value="auto")
        self.extend(
            [
                self.image,
                self.kernel,
                self.psf,
                self.method,
                self.iterations,
                self.regularization,
                self.background,
                self.model_dir,
                self.device,
            ]
        )
        self.finish_layout()
        self.kernel.changed.connect(self._show_fields)
        self._show_fields()

    def _show_fields(self, _value: Any = None) -> None:
        classical = self.kernel.value == KERNELS[0]
        for w in (self.psf, self.method, self.iterations, self.regularization, self.background):
            w.visible = classical
        self.model_dir.visible = self.kernel.value == KERNELS[2]

    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return the API call for the chosen kernel, with the image layer's data and scale."""
        layer = self.image.value
        if layer is None:
            raise user_error("no image layer", fix="open a stack or add a sample first")
        self.input_layer = layer
        img = image_of(layer)
        if self.kernel.value == KERNELS[0]:
            return run_classical, self._classical(img)
        model = default_model_path() if self.kernel.value == KERNELS[1] else self._model_dir()
        args = {
            "image": img.data,
            "model": str(model),
            "voxel_size_um": img.voxel_size_um,
            "device": self.device.value,
        }
        self.result_name = f"{layer.name} {Path(model).name} model"
        return run_model, args

    def _model_dir(self) -> Path:
        path = Path(str(self.model_dir.value))
        if not (path / "config.json").is_file():
            raise user_error(
                "not a NeuroDecon model directory (no config.json)",
                path=path,
                fix="choose the folder written by train",
            )
        return path

    def _classical(self, img: Any) -> dict[str, Any]:
        if self.psf.value is None:
            raise user_error(
                "a classical method needs a PSF layer",
                fix="extract one with the PSF widget, open a PSF file, or choose a model",
            )
        psf = volume_of(self.psf.value)
        self.result_name = f"{self.input_layer.name} {self.method.value}"
        return {
            "image": img.data,
            "psf": psf,
            "voxel_size_um": img.voxel_size_um,
            "method": self.method.value,
            "iterations": iterations_value(self.iterations.value),
            "regularization": optional_float(self.regularization.value, "regularization"),
            "background": auto_or_float(self.background.value, "background"),
            "device": self.device.value,
        }

    def done(self, value: np.ndarray) -> None:
        """Add the result on the input layer's scale and translation."""
        layer = self.input_layer
        self.result_layer = self.viewer.add_image(
            value,
            name=self.result_name,
            scale=layer.scale,
            translate=layer.translate,
        )
