"""Image I/O that keeps voxel sizes: TIFF / OME-TIFF, OME-Zarr, .npy and z-series folders.

``open_lazy`` opens OME-Zarr and TIFF stacks larger than memory as Dask arrays;
``create_ome_zarr`` and ``add_pyramid`` write an OME-Zarr block by block.
"""

from ._api import check_image, format_of, read
from ._coerce import as_image, as_volume, source_of
from ._image import DEFAULT_VOXEL_SIZE_UM, Image
from ._lazy import LazyImage, open_lazy
from ._provenance import clean_stale_partials, current_command, recording_command
from ._units import canonical_axes, default_axes, unit_to_um
from ._write import check_output_path, write, write_json, write_lazy
from ._zarr import add_pyramid, create_ome_zarr

__all__ = [
    "Image",
    "DEFAULT_VOXEL_SIZE_UM",
    "read",
    "open_lazy",
    "LazyImage",
    "create_ome_zarr",
    "add_pyramid",
    "write",
    "write_json",
    "write_lazy",
    "check_output_path",
    "check_image",
    "format_of",
    "as_image",
    "as_volume",
    "source_of",
    "canonical_axes",
    "default_axes",
    "unit_to_um",
    "recording_command",
    "current_command",
    "clean_stale_partials",
]
