"""The *Compare* widget: :func:`neurodecon.compare`, its results as layers and its ranked table.

The report (``report.html``, ``metrics.csv``, figures) is written to the chosen folder (a new
temporary folder when none is given); every method's result is read back as a layer on the
input's scale, and the ranking is shown as a table, best first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, FileEdit, FloatSpinBox, Select, SpinBox, Table

from .. import compare
from ..classical import METHODS
from ..errors import user_error
from ..io import read
from ..report import DEFAULT_METHODS
from ._jobs import JobWidget
from ._layers import volume_of
from ._options import chosen_path

__all__ = ["CompareWidget", "ranked_rows"]

#: columns of the ranked table besides the method's name and rank
TABLE_COLUMNS = ("rank", "method", "time (s)", "iterations")


def ranked_rows(summary: dict[str, Any]) -> tuple[list[list[Any]], list[str]]:
    """Rows of the comparison table, best first, and the column names.

    The columns are the rank, the method, its time, its iterations and the metrics that the
    ranking used (``summary["ranking"]["metrics"]``), from :func:`neurodecon.compare`'s summary.
    """
    metrics = list(summary.get("ranking", {}).get("metrics", []))
    rows = []
    for name, row in summary["methods"].items():
        values = row.get("metrics", {})
        time_s = row.get("time_s")
        rows.append(
            [
                row.get("rank"),
                row.get("spec") or name,
                round(time_s, 2) if isinstance(time_s, float) else time_s,
                row.get("iterations"),
                *[_fmt(values.get(k)) for k in metrics],
            ]
        )
    rows.sort(key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0))
    return rows, [*TABLE_COLUMNS, *metrics]


def _fmt(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


class CompareWidget(JobWidget):
    """Compare methods on an image layer: result layers side by side and a ranked table."""

    title = "Compare"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.image = self.layer_combo("image")
        self.psf = self.layer_combo("PSF layer", optional=True)
        self.beads = self.layer_combo("or bead layer", optional=True)
        self.diameter = FloatSpinBox(
            label="bead diameter (µm)", value=0.1, min=0.005, max=20.0, step=0.01
        )
        self.truth = self.layer_combo("ground truth", optional=True)
        self.methods = Select(
            label="methods", choices=(*METHODS, "model:default"), value=list(DEFAULT_METHODS)
        )
        self.model_dir = FileEdit(
            label="and model directory", mode=FileDialogMode.EXISTING_DIRECTORY
        )
        self.model_dir.tooltip = "a model written by train: compared as model:DIR (optional)"
        self.iterations = SpinBox(label="iterations (0 = auto)", min=0, max=100_000, value=0)
        self.output = FileEdit(label="report folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.output.tooltip = "where report.html and the results go (empty: a temporary folder)"
        self.grid = CheckBox(label="grid view", value=True)
        self.table = Table(value=[], label="ranking")
        self.extend(
            [
                self.image,
                self.psf,
                self.beads,
                self.diameter,
                self.truth,
                self.methods,
                self.model_dir,
                self.iterations,
                self.output,
                self.grid,
            ]
        )
        self.finish_layout()
        self.append(self.table)

    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return :func:`neurodecon.compare` with the layers' data and voxel sizes."""
        layer = self.image.value
        if layer is None:
            raise user_error("no image layer", fix="open a stack or add a sample first")
        methods = list(self.methods.value)
        model = chosen_path(self.model_dir.value)
        if model is not None:
            methods.append(f"model:{model}")
        if not methods:
            raise user_error("no method selected", fix="select at least one method")
        self.input_layer = layer
        folder = chosen_path(self.output.value) or Path(
            tempfile.mkdtemp(prefix="neurodecon_compare_")
        )
        kwargs: dict[str, Any] = {
            "image": volume_of(layer),
            "methods": methods,
            "output_dir": folder,
            "overwrite": True,
            "iterations": "auto" if self.iterations.value <= 0 else int(self.iterations.value),
        }
        if self.psf.value is not None:
            kwargs["psf"] = volume_of(self.psf.value)
        elif self.beads.value is not None:
            kwargs["beads"] = volume_of(self.beads.value)
            kwargs["bead_diameter_um"] = float(self.diameter.value)
        if self.truth.value is not None:
            kwargs["truth"] = volume_of(self.truth.value)
        return compare, kwargs

    def done(self, value: dict[str, Any]) -> None:
        """Add each result as a layer, show the ranked table, and tile the view."""
        self.summary = value
        folder = Path(value["output_dir"])
        layer = self.input_layer
        self.result_layers = []
        rows, columns = ranked_rows(value)
        for name, row in value["methods"].items():
            if row.get("output") and row.get("status") == "ok":
                data = read(folder / row["output"]).data
                label = row.get("spec") or name
                self.result_layers.append(
                    self.viewer.add_image(
                        data,
                        name=f"{layer.name} {label} (#{row.get('rank')})",
                        scale=layer.scale,
                        translate=layer.translate,
                    )
                )
        index = [str(i) for i in range(1, len(rows) + 1)]
        self.table.value = {"data": rows, "index": index, "columns": columns}
        if self.grid.value:
            self.viewer.canvas.grid.enabled = True
        self.status.value = f"report: {value['report']}"
