"""The *Isotropic* widget: Self-Net restoration of an anisotropic stack, trained on that stack.

Calls :func:`neurodecon.isotropic` (the same call as ``neurodecon isotropic``) on an image
layer: raw or deconvolved, no PSF needed. The result is a new layer on the isotropic grid (the
lateral voxel size along z too) at the input's position; the training's steps and the
restoration's planes drive the progress bar, and *Cancel* stops either (a model folder keeps
the training checkpoint, so ``neurodecon isotropic … --save-model DIR --resume`` continues it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, LineEdit, SpinBox

from .. import isotropic
from ..errors import user_error
from ..io import Image
from ..progress import ProgressFn
from ._jobs import JobWidget
from ._layers import volume_of
from ._options import chosen_path, json_options

__all__ = ["IsotropicWidget", "run_isotropic"]

#: where the network comes from
SOURCES = ("train on this stack", "saved model")


def run_isotropic(
    image: Image,
    *,
    model: Path | None,
    save_model: Path | None,
    overwrite: bool,
    preset: str,
    options: dict[str, Any],
    time_limit_min: float | None,
    device: str,
    progress: ProgressFn | None = None,
) -> Image:
    """:func:`neurodecon.isotropic` with the preset's configuration updated by ``options``.

    ``options`` are :class:`neurodecon.learn.SelfNetConfig` fields (``steps``, ``patch``, …);
    the one callback reports the training's steps, then the restored planes.
    """
    from ..device import resolve_device
    from ..learn import SelfNetConfig, selfnet_config

    config = None
    if model is None:
        base = selfnet_config(preset, resolve_device(device))
        config = SelfNetConfig.from_dict({**base.to_dict(), **options})
    return isotropic(
        image,
        model=model,
        save_model=save_model,
        overwrite=overwrite,
        config=config,
        time_limit_min=time_limit_min,
        device=device,
        progress=progress,
        inference_progress=progress,
    )


class IsotropicWidget(JobWidget):
    """Restore isotropic resolution of an image layer with Self-Net (no PSF, no ground truth)."""

    title = "Isotropic"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.image = self.layer_combo("image")
        self.source = ComboBox(label="network", choices=SOURCES, value=SOURCES[0])
        self.model_dir = FileEdit(label="saved model", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.preset = ComboBox(label="preset", choices=("auto", "cpu", "paper"), value="auto")
        self.preset.tooltip = "cpu: minutes on 2 cores; paper: the authors' sizes (GPU); auto"
        self.steps = SpinBox(label="steps (0 = preset's)", min=0, max=1_000_000, value=0)
        self.time_limit = FloatSpinBox(
            label="time limit (min, 0 = none)", min=0.0, max=10_000.0, value=15.0
        )
        self.save_model = FileEdit(
            label="keep model in (optional)", mode=FileDialogMode.EXISTING_DIRECTORY
        )
        self.overwrite = CheckBox(label="overwrite", value=False)
        self.device = ComboBox(label="device", choices=("auto", "cpu", "cuda"), value="auto")
        self.more_options = LineEdit(label="more options (JSON)", value="")
        self.more_options.tooltip = (
            'options of neurodecon.learn.SelfNetConfig, e.g. {"patch": 32, "channels": 8}'
        )
        self.extend(
            [
                self.image,
                self.source,
                self.model_dir,
                self.preset,
                self.steps,
                self.time_limit,
                self.save_model,
                self.overwrite,
                self.device,
                self.more_options,
            ]
        )
        self.finish_layout()
        self.source.changed.connect(self._show_fields)
        self._show_fields()

    def _show_fields(self, _value: Any = None) -> None:
        train = self.source.value == SOURCES[0]
        self.model_dir.visible = not train
        for w in (
            self.preset,
            self.steps,
            self.time_limit,
            self.save_model,
            self.overwrite,
            self.more_options,
        ):
            w.visible = train

    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return :func:`run_isotropic` with the layer's volume and voxel size."""
        layer = self.image.value
        if layer is None:
            raise user_error("no image layer", fix="open an anisotropic z-stack first")
        self.input_layer = layer
        model = None
        if self.source.value == SOURCES[1]:
            model = chosen_path(self.model_dir.value)
            if model is None:
                raise user_error(
                    "no saved model chosen", fix="choose the folder a training kept its model in"
                )
        options = json_options(self.more_options.value, "more options")
        if int(self.steps.value) > 0:
            options["steps"] = int(self.steps.value)
        self.result_name = f"{layer.name} isotropic"
        return run_isotropic, {
            "image": volume_of(layer),
            "model": model,
            "save_model": None if model is not None else chosen_path(self.save_model.value),
            "overwrite": bool(self.overwrite.value),
            "preset": self.preset.value,
            "options": options if model is None else {},
            "time_limit_min": float(self.time_limit.value) or None,
            "device": self.device.value,
        }

    def done(self, value: Image) -> None:
        """Add the restored stack on the isotropic grid, at the input's position."""
        layer = self.input_layer
        scale = list(layer.scale)
        scale[-3:] = value.voxel_size_um
        self.result = value
        self.result_layer = self.viewer.add_image(
            value.data, name=self.result_name, scale=scale, translate=layer.translate
        )
        record = value.metadata["isotropic"]
        steps = record.get("steps_done")
        trained = "" if steps is None else f", {steps} training steps"
        self.status.value += (
            f"; anisotropy {record['anisotropy_ratio']:.2f} restored to "
            f"{value.voxel_size_um[0]:g} µm voxels{trained}"
        )
