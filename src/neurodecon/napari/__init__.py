"""The napari plugin: NeuroDecon's reader, writer, sample data and widgets in the viewer.

Install with ``pip install "neurodecon[napari]"``; napari finds the plugin through the
``napari.manifest`` entry point (``napari.yaml`` in this folder). Nothing here is imported by
``import neurodecon``: Qt and napari load only when napari asks for a contribution.

Contributions (see ``docs/napari.md``):

- reader and writer for the formats of :func:`neurodecon.read` / :func:`neurodecon.write`
  (voxel size ↔ layer ``scale``);
- sample data: the demo's simulated stack (with its ground truth) and bead stack;
- widgets: PSF from a bead layer, deconvolve, train, compare. Each is a thin layer over the
  Python API and runs its job in a napari thread worker, with progress and cancel.
"""

__all__: list[str] = []
