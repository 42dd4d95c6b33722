"""z-series (folder or glob of single-plane TIFFs) and RGB exports (synthetic files)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from neurodecon.errors import NeuroDeconError
from neurodecon.io import read


def _planes(folder, n=12, name="img_{i}.tif", shape=(6, 7), dtype=np.uint16):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        plane = np.full(shape, i, dtype=dtype)
        plane[0, 0] = 100  # not constant
        tifffile.imwrite(folder / name.format(i=i), plane, photometric="minisblack")


def test_natural_order_by_number_in_name(tmp_path):
    _planes(tmp_path / "s")  # img_0 ... img_11: lexicographic order would put img_10 after img_1
    img = read(tmp_path / "s")
    assert img.shape == (12, 6, 7) and img.axes == "ZYX"
    np.testing.assert_array_equal(img.data[:, 3, 3], np.arange(12))
    assert img.metadata["n_files"] == 12 and img.metadata["last_file"] == "img_11.tif"


def test_glob_selects_one_series_and_mixed_folder_is_refused(tmp_path):
    folder = tmp_path / "s"
    _planes(folder, n=4, name="a_z{i}.tif")
    _planes(folder, n=3, name="b_t{i}.tif")
    with pytest.raises(NeuroDeconError, match="2 different patterns"):
        read(folder)
    img = read(folder / "b_t*.tif")
    assert img.shape == (3, 6, 7)


def test_subfolders_and_other_files_are_ignored(tmp_path):
    folder = tmp_path / "s"
    _planes(folder, n=3)
    (folder / "_output").mkdir()
    tifffile.imwrite(folder / "_output" / "other.tif", np.ones((5, 5), np.uint8))
    (folder / "parameters.txt").write_text("voxel 100 nm")
    assert read(folder).shape == (3, 6, 7)


def test_mismatched_plane_names_the_file(tmp_path):
    folder = tmp_path / "s"
    _planes(folder, n=3)
    tifffile.imwrite(folder / "img_3.tif", np.ones((5, 7), np.uint16))
    with pytest.raises(NeuroDeconError, match=r"img_3\.tif: plane 3 has shape \(5, 7\)"):
        read(folder)


def test_a_stack_inside_a_series_is_refused(tmp_path):
    folder = tmp_path / "s"
    _planes(folder, n=2)
    tifffile.imwrite(folder / "img_2.tif", np.ones((3, 6, 7), np.uint16), photometric="minisblack")
    with pytest.raises(NeuroDeconError, match="not a single plane"):
        read(folder)


def test_rgb_planes_with_one_live_channel(tmp_path, messages):
    folder = tmp_path / "rgb"
    folder.mkdir()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 255, size=(5, 8, 9), dtype=np.uint8)
    for z in range(5):
        rgb = np.zeros((8, 9, 3), np.uint8)
        rgb[..., 2] = truth[z]  # blue holds the data
        tifffile.imwrite(folder / f"p{z:02d}.tif", rgb, photometric="rgb")
    img = read(folder)
    assert img.shape == (5, 8, 9) and img.axes == "ZYX"
    np.testing.assert_array_equal(img.data, truth)
    assert img.metadata["channel_picked"]["name"] == "B"
    assert any("channel B" in m for m in messages)


def test_rgb_channel_chosen_over_the_whole_stack(tmp_path):
    """A channel that is zero in the first plane but carries data later is not dropped."""
    folder = tmp_path / "rgb"
    folder.mkdir()
    for z in range(3):
        rgb = np.zeros((4, 4, 3), np.uint8)
        rgb[..., 1] = z * 10 + np.arange(16, dtype=np.uint8).reshape(4, 4) * (z > 0)
        tifffile.imwrite(folder / f"p{z}.tif", rgb, photometric="rgb")
    img = read(folder)
    assert img.shape == (3, 4, 4) and img.metadata["channel_picked"]["name"] == "G"


def test_rgb_with_several_live_channels_is_kept_as_channels(tmp_path, messages):
    p = tmp_path / "colour.tif"
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, size=(3, 8, 9, 3), dtype=np.uint8)
    tifffile.imwrite(p, data, photometric="rgb")
    img = read(p)
    assert img.axes == "CZYX" and img.shape == (3, 3, 8, 9)
    np.testing.assert_array_equal(img.data, np.moveaxis(data, -1, 0))
    assert any("kept them as 3 channels" in m for m in messages)
    assert "kept them as 3 channels" in img.metadata["warnings"][0]


def test_grey_saved_as_rgb_keeps_one_channel(tmp_path):
    p = tmp_path / "grey.tif"
    grey = np.random.default_rng(2).integers(0, 255, size=(3, 8, 9), dtype=np.uint8)
    tifffile.imwrite(p, np.repeat(grey[..., None], 3, axis=-1), photometric="rgb")
    img = read(p)
    assert img.axes == "ZYX"
    np.testing.assert_array_equal(img.data, grey)
    assert "identical" in img.metadata["channel_picked"]["reason"]


def test_imagej_plane_calibration_and_leica_xml(tmp_path):
    """x/y from the planes' ImageJ calibration.

    z (and x/y) from a Leica MetaData/*.xml beside them.
    """
    folder = tmp_path / "leica"
    folder.mkdir()
    for z in range(4):
        plane = np.arange(30, dtype=np.uint8).reshape(5, 6) + z
        tifffile.imwrite(
            folder / f"Series7_z{z}.tif",
            plane,
            imagej=True,
            resolution=(1 / 0.05, 1 / 0.05),
            metadata={"unit": "um"},
        )
    img = read(folder)
    assert img.voxel_size_um[1:] == pytest.approx((0.05, 0.05))
    assert img.voxel_size_assumed and "for z " in img.metadata["warnings"][0]
    (folder / "MetaData").mkdir()
    dims = [("1", 6, 5e-7), ("2", 5, 4e-7), ("3", 4, 1.5e-6)]
    xml = "".join(
        f'<DimensionDescription DimID="{d}" NumberOfElements="{n}" Length="{ln}" Unit="m"/>'
        for d, n, ln in dims
    )
    (folder / "MetaData" / "Series7.xml").write_text(
        f"<Data><Image><Dimensions>{xml}</Dimensions></Image></Data>"
    )
    img = read(folder)
    assert not img.voxel_size_assumed
    assert img.voxel_size_um == pytest.approx((0.5, 0.1, 0.1))  # Length / (N - 1)
    assert "Series7.xml" in img.metadata["voxel_size_source"]
