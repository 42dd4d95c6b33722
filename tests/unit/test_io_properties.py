"""Property tests: TIFF -> OME-TIFF -> OME-Zarr -> TIFF round trip.

Data stays bit-exact and voxel sizes agree to 1e-6.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from neurodecon.io import Image, read, write

DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32])
VOXEL = st.floats(min_value=0.005, max_value=50.0, allow_nan=False, allow_infinity=False)
SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9))


@st.composite
def images(draw):
    dtype = draw(DTYPES)
    shape = draw(SHAPES)
    if np.dtype(dtype).kind == "f":
        elements = st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False)
    else:
        elements = st.integers(0, int(np.iinfo(dtype).max))
    data = draw(arrays(dtype, shape, elements=elements))
    return Image(data=data, voxel_size_um=(draw(VOXEL), draw(VOXEL), draw(VOXEL)))


CHAIN = ("start.tif", "step.ome.tif", "step.ome.zarr", "end.tif")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_chain_round_trip_is_bit_exact(image):
    with tempfile.TemporaryDirectory() as tmp:
        current = image
        for name in CHAIN:
            path = Path(tmp) / name
            write(path, current, dtype="keep")
            current = read(path, check=False)
            assert current.shape == image.shape, name
            assert current.dtype == image.dtype, name
            assert current.data.tobytes() == image.data.tobytes(), name
            np.testing.assert_allclose(current.voxel_size_um, image.voxel_size_um, rtol=1e-6)
            assert not current.voxel_size_assumed


@settings(max_examples=25, deadline=None)
@given(images())
def test_uint16_output_reconstructs_values_within_half_a_step(image):
    data = image.data.astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "u.ome.tif"
        write(path, image, dtype="uint16")
        stored = read(path, check=False)
        assert stored.dtype == np.uint16
        s = stored.metadata["scaling"]
        values = stored.data.astype(np.float64) * s["scale"] + s["offset"]
        assert (
            np.abs(values - data).max() <= 0.5 * s["scale"] * (1 + 1e-9) + 1e-9 * np.abs(data).max()
        )
        np.testing.assert_allclose(stored.voxel_size_um, image.voxel_size_um, rtol=1e-6)
