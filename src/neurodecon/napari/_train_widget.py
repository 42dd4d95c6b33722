"""The *Train* widget: :func:`neurodecon.train` from a bead layer, with live loss and validation.

The training's progress messages (``loss 0.0412 val PSNR 25.10``) are shown as they come and
kept in :attr:`TrainWidget.history`; *Cancel* stops the run (its checkpoint stays, so
``resume`` can continue it from the command line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, Label, LineEdit, SpinBox

from .. import train
from ..errors import user_error
from ..psf import BEAD_METHODS
from ._jobs import JobWidget
from ._layers import volume_of
from ._options import chosen_path, json_options

__all__ = ["TrainWidget", "parse_training_message"]

_LOSS = re.compile(r"loss ([-+0-9.eE]+|nan)")
_VAL = re.compile(r"val PSNR ([-+0-9.eE]+|nan)")


def parse_training_message(message: str) -> tuple[float | None, float | None]:
    """Return ``(loss, validation PSNR)`` from a training progress message (``None`` if absent).

    Examples
    --------
    >>> parse_training_message("loss 0.0412 val PSNR 25.10")
    (0.0412, 25.1)
    >>> parse_training_message("RL_8 of the pool: volume 1/3")
    (None, None)
    """
    loss, val = _LOSS.search(message), _VAL.search(message)
    return (
        float(loss.group(1)) if loss else None,
        float(val.group(1)) if val else None,
    )


class TrainWidget(JobWidget):
    """Train a NeuroDecon model from a bead layer; the result is a model directory."""

    title = "Train"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.beads = self.layer_combo("bead stack")
        self.diameter = FloatSpinBox(
            label="bead diameter (µm)", value=0.1, min=0.005, max=20.0, step=0.01
        )
        self.bead_method = ComboBox(label="bead method", choices=BEAD_METHODS, value="joint")
        self.output = FileEdit(label="model directory", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.overwrite = CheckBox(label="overwrite", value=False)
        self.steps = SpinBox(label="steps", min=1, max=1_000_000, value=5000)
        self.time_limit = FloatSpinBox(
            label="time limit (min, 0 = none)", min=0.0, max=10_000.0, value=20.0
        )
        self.physics = ComboBox(label="physics input", choices=("rl", "none"), value="rl")
        self.device = ComboBox(label="device", choices=("auto", "cpu", "cuda"), value="auto")
        self.more_options = LineEdit(label="more options (JSON)", value="")
        self.more_options.tooltip = (
            'options of neurodecon.learn.TrainConfig, e.g. {"lr": 5e-4, "net": {"depth": 2}}'
        )
        self.live = Label(value="", label="loss")
        self.history: list[tuple[int, float | None, float | None]] = []
        self.extend(
            [
                self.beads,
                self.diameter,
                self.bead_method,
                self.output,
                self.overwrite,
                self.steps,
                self.time_limit,
                self.physics,
                self.device,
                self.more_options,
            ]
        )
        self.finish_layout()
        self.append(self.live)

    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return :func:`neurodecon.train` with the bead layer's data and voxel size."""
        layer = self.beads.value
        if layer is None:
            raise user_error("no bead layer", fix="open a bead stack or add the demo beads")
        out = chosen_path(self.output.value)
        if out is None:
            raise user_error("no model directory", fix="choose a folder for the trained model")
        config = {
            "steps": int(self.steps.value),
            "time_limit_min": float(self.time_limit.value) or None,
            "physics": self.physics.value,
            "device": self.device.value,
        }
        config.update(json_options(self.more_options.value, "more options"))
        self.history = []
        self.live.value = ""
        return train, {
            "config": config,
            "output_dir": out,
            "beads": volume_of(layer),
            "bead_diameter_um": float(self.diameter.value),
            "bead_options": {"method": self.bead_method.value},
            "overwrite": bool(self.overwrite.value),
        }

    def on_progress(self, done: int, total: int, message: str) -> None:
        """Keep and show the loss and the validation PSNR of each step."""
        loss, val = parse_training_message(message)
        if loss is None:
            return
        self.history.append((int(done), loss, val))
        best = max((v for _, _, v in self.history if v is not None), default=None)
        self.live.value = f"step {done}/{total}: loss {loss:.4g}" + (
            f", best val PSNR {best:.2f} dB" if best is not None else ""
        )

    def done(self, value: Path) -> None:
        """Report the model directory (use it in the Deconvolve widget)."""
        self.model_dir = Path(value)
        self.status.value = f"model written to {self.model_dir}"
        from napari.utils.notifications import show_info

        show_info(f"{self.title}: model written to {self.model_dir}")
