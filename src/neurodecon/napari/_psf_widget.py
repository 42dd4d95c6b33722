"""The *PSF from beads* widget: :func:`neurodecon.extract_psf` on a bead layer.

Adds the PSF (at the beads' voxel size), the beads used and the rejected beads (with their
reason code) as points layers, and writes and shows the QC figure
(:func:`neurodecon.psf.bead_qc_figure`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, FileEdit, FloatSpinBox, Label
from qtpy.QtCore import Qt
from qtpy.QtGui import QPixmap

from ..errors import user_error
from ..io import Image
from ..progress import ProgressFn
from ..psf import BEAD_METHODS, BEAD_REJECTION_REASONS, BeadPSF, bead_qc_figure, extract_psf
from ._jobs import JobWidget
from ._layers import volume_of
from ._options import chosen_path

__all__ = ["PsfWidget", "extract_with_figure"]

#: width in pixels of the QC figure's preview in the widget
PREVIEW_WIDTH = 420


def extract_with_figure(
    beads: Image,
    *,
    bead_diameter_um: float,
    method: str,
    figure: Path | None,
    progress: ProgressFn | None = None,
) -> tuple[BeadPSF, Path | None]:
    """:func:`neurodecon.extract_psf`, then its QC figure when ``figure`` is a path."""
    result = extract_psf(beads, bead_diameter_um=bead_diameter_um, method=method, progress=progress)
    if figure is not None:
        figure = bead_qc_figure(result, beads, figure)
    return result, figure


class PsfWidget(JobWidget):
    """Extract a PSF from a bead layer; show the beads used and rejected, and the QC figure."""

    title = "PSF from beads"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.beads = self.layer_combo("bead stack")
        self.diameter = FloatSpinBox(
            label="bead diameter (µm)", value=0.1, min=0.005, max=20.0, step=0.01
        )
        self.method = ComboBox(label="method", choices=BEAD_METHODS, value="joint")
        self.figure = FileEdit(label="QC figure", mode=FileDialogMode.OPTIONAL_FILE, filter="*.png")
        self.figure.tooltip = "PNG file for the QC figure (empty: a temporary file)"
        self.preview = Label(value="", label="QC")
        self.extend([self.beads, self.diameter, self.method, self.figure])
        self.finish_layout()
        self.append(self.preview)

    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return :func:`extract_with_figure` with the bead layer's data and voxel size."""
        layer = self.beads.value
        if layer is None:
            raise user_error("no bead layer", fix="open a bead stack or add the demo beads")
        self.input_layer = layer
        path = chosen_path(self.figure.value)
        if path is None:
            tmp = tempfile.mkdtemp(prefix="neurodecon_psf_")
            path = Path(tmp) / f"{layer.name}_qc.png"
        return extract_with_figure, {
            "beads": volume_of(layer),
            "bead_diameter_um": float(self.diameter.value),
            "method": self.method.value,
            "figure": path,
        }

    def done(self, value: tuple[BeadPSF, Path | None]) -> None:
        """Add the PSF, the used and rejected beads; show the QC figure."""
        result, figure = value
        layer = self.input_layer
        scale = layer.scale[-3:]
        translate = layer.translate[-3:]
        self.psf_layer = self.viewer.add_image(
            result.psf,
            name=f"PSF ({layer.name})",
            scale=result.voxel_size_um,
            colormap="magma",
            metadata={"neurodecon": result.summary()},
        )
        self.used_layer = self.viewer.add_points(
            np.asarray(result.positions, dtype=np.float32).reshape(-1, 3),
            name=f"beads used ({layer.name})",
            scale=scale,
            translate=translate,
            size=8,
            face_color="transparent",
            border_color="lime",
        )
        positions = np.array([p for p, _ in result.rejected], dtype=np.float32).reshape(-1, 3)
        reasons = [r for _, r in result.rejected]
        self.rejected_layer = self.viewer.add_points(
            positions,
            name=f"beads rejected ({layer.name})",
            scale=scale,
            translate=translate,
            size=8,
            symbol="x",
            face_color="red",
            border_color="red",
            features={"reason": reasons},
            text={"string": "{reason}", "color": "red", "size": 8, "anchor": "upper_left"},
        )
        self.figure_path = figure
        counts = ", ".join(f"{n} {r}" for r, n in sorted(result.rejection_counts.items()))
        self.status.value = (
            f"{result.n_used} beads used, {len(result.rejected)} rejected"
            + (f" ({counts})" if counts else "")
            + f"; FWHM z/y/x {', '.join(f'{v:.3f}' for v in result.fwhm_um)} µm"
        )
        self.status.tooltip = "\n".join(f"{k}: {v}" for k, v in BEAD_REJECTION_REASONS.items())
        if figure is not None:
            self._show_figure(figure)

    def _show_figure(self, figure: Path) -> None:
        pixmap = QPixmap(str(figure))
        label = self.preview.native
        label.setPixmap(
            pixmap.scaledToWidth(PREVIEW_WIDTH, Qt.TransformationMode.SmoothTransformation)
        )
        label.setToolTip(str(figure))
