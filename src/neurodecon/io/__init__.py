"""Image I/O that keeps voxel sizes: TIFF / OME-TIFF, OME-Zarr, .npy and z-series folders."""

from ._api import check_image, format_of, read
from ._coerce import as_image, as_volume, source_of
from ._image import DEFAULT_VOXEL_SIZE_UM, Image
from ._provenance import clean_stale_partials, current_command, recording_command
from ._units import canonical_axes, unit_to_um
from ._write import check_output_path, write, write_json

__all__ = [
    "Image",
    "DEFAULT_VOXEL_SIZE_UM",
    "read",
    "write",
    "write_json",
    "check_output_path",
    "check_image",
    "format_of",
    "as_image",
    "as_volume",
    "source_of",
    "canonical_axes",
    "unit_to_um",
    "recording_command",
    "current_command",
    "clean_stale_partials",
]
