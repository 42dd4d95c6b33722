"""The real stacks in ../shared/data load with the right shapes and voxel sizes.

Also info/convert end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from neurodecon.io import read

FRT = "FRT_simple_psf_extractor/tiff_series_project"
HOOGENBOOM = "psf_extractor_hoogenboom/sample_zstack"


def test_pollen(shared_data):
    img = read(shared_data / "sdeconv/pollen.tif")
    assert img.shape == (32, 256, 256) and img.dtype == np.uint16 and img.axes == "ZYX"
    # no calibration in the file (only a 72 dpi default): the size is assumed and says so
    assert img.voxel_size_assumed and "assuming" in img.metadata["warnings"][0]


def test_hoogenboom_folder_is_a_z_series_of_34_planes(shared_data):
    folder = shared_data / HOOGENBOOM
    img = read(folder)
    assert img.shape == (34, 512, 512) and img.dtype == np.uint8
    # independent reading: tifffile plane by plane, sorted by name (the documented order)
    files = sorted(folder.glob("sample_zstack*.tif"))
    for z in (0, 17, 33):
        np.testing.assert_array_equal(img.data[z], tifffile.imread(files[z]))
    # ImageJ calibration 9.23093 px/µm -> 0.10833 µm; the planes carry no z step
    np.testing.assert_allclose(img.voxel_size_um[1:], (1 / 9.23093, 1 / 9.23093), rtol=1e-6)
    assert img.voxel_size_assumed and "for z " in img.metadata["warnings"][0]


def test_frt_rgb_series_reads_green_channel_with_leica_voxel_size(shared_data):
    folder = shared_data / FRT
    img = read(folder)
    assert img.shape == (71, 1024, 1024) and img.dtype == np.uint8 and img.axes == "ZYX"
    assert img.metadata["channel_picked"]["name"] == "G"
    for z in (0, 35, 70):  # natural order: _z00 ... _z70; channel 1 holds the data
        plane = tifffile.imread(folder / f"Project_Series045_z{z:02d}.tif")
        np.testing.assert_array_equal(img.data[z], plane[..., 1])
        assert plane[..., 0].max() == 0 and plane[..., 2].max() == 0
    # MetaData/Project_Series045.xml: X 4.541016e-05 m over 1024 px, Z 6.9979e-06 m over 71 planes
    np.testing.assert_allclose(
        img.voxel_size_um, (6.9979 / 70, 45.41016 / 1023, 45.41016 / 1023), rtol=1e-6
    )
    assert not img.voxel_size_assumed
    assert "Leica" in img.metadata["voxel_size_source"]


def test_deconwolf_dapi_has_no_voxel_size_in_file(shared_data):
    path = shared_data / "deconwolf/dapi_001.tif"
    img = read(path)
    assert img.shape == (40, 201, 101) and img.dtype == np.uint16
    assert (int(img.data.min()), int(img.data.max())) == (1758, 21980)
    assert (
        img.voxel_size_assumed
    )  # PROVENANCE.md: 130 nm xy, 300 nm z, from the repository's makefile
    img = read(path, voxel_size_um=(0.3, 0.13, 0.13))
    assert img.voxel_size_um == (0.3, 0.13, 0.13) and not img.voxel_size_assumed


def test_imagej_bead_stack_calibration(shared_data):
    img = read(shared_data / "bioimage_analysis_notebooks/Bead_Image1_crop.tif")
    assert img.shape == (41, 150, 150)
    np.testing.assert_allclose(img.voxel_size_um, (0.125, 0.0225, 0.0225), rtol=0.01)
    assert not img.voxel_size_assumed


def test_frt_single_bead_sequence(shared_data):
    img = read(shared_data / "FRT_simple_psf_extractor/image_sequence")
    assert img.shape == (71, 36, 36)
    z, y, x = np.unravel_index(np.argmax(img.data), img.shape)
    assert z == 35 and int(img.data.max()) == 106  # PROVENANCE.md: peak 106 at z = 35


def test_info_json_on_series(shared_data, run_cli):
    code, out, err = run_cli("info", shared_data / HOOGENBOOM, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["shape"] == [34, 512, 512] and info["dtype"] == "uint8" and info["axes"] == "ZYX"
    assert info["voxel_size_assumed"] is True and info["format"] == "tiff-series"
    assert (info["min"], info["max"]) == (1, 154)  # PROVENANCE.md: range 1..154
    assert "assuming" in err


def test_info_text_with_voxel_override(shared_data, run_cli):
    code, out, err = run_cli(
        "info", shared_data / "deconwolf/dapi_001.tif", "--voxel-size", "0.3", "0.13", "0.13"
    )
    assert code == 0 and err == ""
    assert "40 x 201 x 101" in out and "z 0.3  y 0.13  x 0.13" in out and "1758 .. 21980" in out


def test_convert_series_to_ome_tiff_and_zarr(shared_data, run_cli, tmp_path):
    folder = shared_data / HOOGENBOOM
    ref = np.stack([tifffile.imread(f) for f in sorted(folder.glob("sample_zstack*.tif"))])
    vs = ("0.3", "0.108", "0.108")
    code, out, err = run_cli("convert", folder, tmp_path / "beads.ome.tif", "--voxel-size", *vs)
    assert code == 0, err
    code, out, err = run_cli("convert", tmp_path / "beads.ome.tif", tmp_path / "beads.ome.zarr")
    assert code == 0, err
    for name in ("beads.ome.tif", "beads.ome.zarr"):
        img = read(tmp_path / name)
        assert img.dtype == np.uint8 and img.data.tobytes() == ref.tobytes()
        assert img.voxel_size_um == pytest.approx((0.3, 0.108, 0.108), rel=1e-9)
        assert img.metadata["provenance"]["parameters"]["dtype"] == "keep"


@pytest.mark.slow
def test_convert_frt_series_to_float32_ome_zarr(shared_data, run_cli, tmp_path):
    folder = shared_data / FRT
    code, _, err = run_cli("convert", folder, tmp_path / "frt.ome.zarr", "--dtype", "float32")
    assert code == 0, err
    img = read(tmp_path / "frt.ome.zarr")
    assert img.shape == (71, 1024, 1024) and img.dtype == np.float32
    assert img.voxel_size_um == pytest.approx(
        (6.9979 / 70, 45.41016 / 1023, 45.41016 / 1023), rel=1e-6
    )
    assert img.metadata["provenance"]["parameters"]["channel_picked"]["name"] == "G"
    plane = tifffile.imread(folder / "Project_Series045_z35.tif")[..., 1]
    np.testing.assert_array_equal(img.data[35], plane.astype(np.float32))
