"""Image I/O: formats, voxel-size rules, provenance, output policy (synthetic files)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from neurodecon.errors import NeuroDeconError
from neurodecon.io import Image, canonical_axes, check_image, format_of, read, unit_to_um, write


def _stack(shape=(4, 6, 5), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


# --- formats and round-trips ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.tif", "a.ome.tif", "a.ome.zarr", "a.tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int32, np.float64])
def test_keep_round_trip_is_bit_exact_with_voxel_size(tmp_path, name, dtype):
    data = _stack(dtype=dtype)
    vs = (0.3, 0.0443892, 0.0443892)
    write(tmp_path / name, Image(data=data, voxel_size_um=vs), dtype="keep")
    back = read(tmp_path / name)
    assert back.dtype == data.dtype and back.axes == "ZYX"
    assert back.data.tobytes() == data.tobytes()
    np.testing.assert_allclose(back.voxel_size_um, vs, rtol=1e-9)
    assert not back.voxel_size_assumed
    assert back.metadata["provenance"]["version"]


def test_npy_round_trip_keeps_data_and_warns_voxel_size_lost(tmp_path, messages):
    data = _stack(dtype=np.float32)
    write(tmp_path / "a.npy", data, dtype="keep")
    back = read(tmp_path / "a.npy")
    assert back.data.tobytes() == data.tobytes()
    assert back.voxel_size_assumed
    assert any("no voxel size" in m for m in messages)


def test_default_write_is_float32(tmp_path):
    data = _stack(dtype=np.uint16)
    write(tmp_path / "a.tif", Image(data=data))
    back = read(tmp_path / "a.tif")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.data, data.astype(np.float32))


def test_uint16_scaling_recorded_and_read_back(tmp_path):
    data = (_stack(dtype=np.float32) * 3.5 - 1.0).astype(np.float32)
    for name in ("s.tif", "s.ome.tif", "s.ome.zarr"):
        write(tmp_path / name, Image(data=data, voxel_size_um=(1, 0.1, 0.1)), dtype="uint16")
        stored = read(tmp_path / name)
        assert stored.dtype == np.uint16
        assert stored.data.min() == 0 and stored.data.max() == 65535
        s = stored.metadata["scaling"]
        assert s["offset"] == pytest.approx(float(data.min()))
        values = read(tmp_path / name, unscale=True).data
        assert values.dtype == np.float32
        # linear scaling: error at most half a quantisation step
        assert np.abs(values - data).max() <= s["scale"] * 0.5 + 1e-5 * np.abs(data).max()


def test_uint16_of_integer_data_in_range_is_lossless(tmp_path):
    data = _stack(dtype=np.uint8).astype(np.int32)
    write(tmp_path / "i.ome.tif", Image(data=data), dtype="uint16")
    back = read(tmp_path / "i.ome.tif")
    np.testing.assert_array_equal(back.data, data)
    assert back.metadata["scaling"]["scale"] == 1.0


def test_keep_copy_carries_the_scaling_forward(tmp_path):
    data = np.linspace(-2, 5, 4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5)
    write(tmp_path / "s.tif", Image(data=data), dtype="uint16")
    write(tmp_path / "c.ome.zarr", read(tmp_path / "s.tif"), dtype="keep")
    np.testing.assert_allclose(read(tmp_path / "c.ome.zarr", unscale=True).data, data, atol=1e-3)


@pytest.mark.parametrize("name", ["c.tif", "c.ome.tif", "c.ome.zarr"])
def test_channel_axis_and_single_plane_round_trip(tmp_path, name):
    data = _stack(shape=(2, 1, 6, 5), dtype=np.uint16)
    write(
        tmp_path / name, Image(data=data, axes="CZYX", voxel_size_um=(0.5, 0.2, 0.1)), dtype="keep"
    )
    back = read(tmp_path / name)
    assert back.axes == "CZYX" and back.shape == data.shape
    assert back.data.tobytes() == data.tobytes()
    np.testing.assert_allclose(back.voxel_size_um, (0.5, 0.2, 0.1), rtol=1e-9)


def test_provenance_stored_in_every_format(tmp_path):
    data = _stack(dtype=np.float32)
    for name in ("p.tif", "p.ome.tif", "p.ome.zarr", "p64.tif"):
        arr = data.astype(np.float64) if name == "p64.tif" else data
        write(
            tmp_path / name, arr, dtype="keep", provenance={"parameters": {"method": "rl", "n": 3}}
        )
        prov = read(tmp_path / name).metadata["provenance"]
        assert prov["parameters"] == {"method": "rl", "n": 3}, name
        assert prov["software"] == "neurodecon" and "command" in prov


def test_format_of():
    assert format_of("x.OME.TIF") == "ome-tiff"
    assert format_of("x.tiff") == "tiff"
    assert format_of("x.ome.zarr/") == "ome-zarr"
    assert format_of("x.npy") == "npy"
    assert format_of("dir/*.tif") == "series"
    assert format_of("x.png") == "unknown"


# --- voxel-size rules ----------------------------------------------------------------------


def test_imagej_calibration_in_nanometres(tmp_path):
    p = tmp_path / "nm.tif"
    tifffile.imwrite(
        p,
        _stack(),
        imagej=True,
        resolution=(1 / 65.0, 1 / 130.0),
        metadata={"spacing": 250.0, "unit": "nm", "axes": "ZYX"},
    )
    img = read(p)
    np.testing.assert_allclose(img.voxel_size_um, (0.25, 0.13, 0.065), rtol=1e-7)
    assert "ImageJ" in img.metadata["voxel_size_source"]


def test_imagej_escaped_micro_sign_unit(tmp_path):
    p = tmp_path / "mu.tif"
    tifffile.imwrite(
        p,
        _stack(),
        imagej=True,
        resolution=(1 / 0.1, 1 / 0.1),
        metadata={"spacing": 0.3, "unit": "\\u00B5m", "axes": "ZYX"},
    )
    np.testing.assert_allclose(read(p).voxel_size_um, (0.3, 0.1, 0.1), rtol=1e-7)


def test_imagej_uncalibrated_pixel_unit_is_assumed_with_warning(tmp_path, messages):
    p = tmp_path / "px.tif"
    tifffile.imwrite(p, _stack(), imagej=True, metadata={"unit": "pixel", "axes": "ZYX"})
    img = read(p)
    assert img.voxel_size_assumed and img.voxel_size_um == (1.0, 1.0, 1.0)
    msg = " ".join(messages)
    assert "assuming (z, y, x) = (1, 1, 1)" in msg and "--voxel-size" in msg


def test_ome_physical_size_units_converted(tmp_path):
    p = tmp_path / "u.ome.tif"
    md = {
        "axes": "ZYX",
        "PhysicalSizeX": 65.0,
        "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 0.065,
        "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 0.0005,
        "PhysicalSizeZUnit": "mm",
    }
    tifffile.imwrite(p, _stack(), ome=True, metadata=md)
    img = read(p)
    np.testing.assert_allclose(img.voxel_size_um, (0.5, 0.065, 0.065), rtol=1e-9)
    assert img.metadata["format"] == "ome-tiff"


def test_ome_missing_z_is_assumed_only_for_z(tmp_path):
    p = tmp_path / "noz.ome.tif"
    tifffile.imwrite(
        p, _stack(), ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1}
    )
    img = read(p)
    assert img.voxel_size_assumed
    assert img.voxel_size_um == pytest.approx((1.0, 0.1, 0.1))
    assert "for z " in img.metadata["warnings"][0]


def test_plain_tiff_resolution_tags(tmp_path):
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(
        cm,
        _stack(),
        resolution=(1e4 / 0.2, 1e4 / 0.2),
        resolutionunit="CENTIMETER",
        photometric="minisblack",
    )
    np.testing.assert_allclose(read(cm).voxel_size_um[1:], (0.2, 0.2), rtol=1e-7)
    dpi = tmp_path / "dpi.tif"  # 72 dpi is what many programs write for "no calibration"
    tifffile.imwrite(
        dpi, _stack(), resolution=(72, 72), resolutionunit="INCH", photometric="minisblack"
    )
    img = read(dpi)
    assert img.voxel_size_assumed and img.voxel_size_um == (1.0, 1.0, 1.0)


def test_imagej_without_unit_falls_back_to_resolution_unit(tmp_path):
    p = tmp_path / "ijcm.tif"
    tifffile.imwrite(
        p,
        _stack(),
        imagej=True,
        resolution=(1e4 / 0.25, 1e4 / 0.25),
        resolutionunit="CENTIMETER",
        metadata={"axes": "ZYX", "spacing": 0.5},
    )
    img = read(p)
    assert img.voxel_size_um[1:] == pytest.approx((0.25, 0.25), rel=1e-7)
    assert img.voxel_size_assumed  # 'spacing' without a unit is not trusted for z


def test_override_voxel_size_and_reject_bad_values(tmp_path):
    p = tmp_path / "a.tif"
    tifffile.imwrite(p, _stack(), photometric="minisblack")
    img = read(p, voxel_size_um=(0.3, 0.13, 0.13))
    assert img.voxel_size_um == (0.3, 0.13, 0.13) and not img.voxel_size_assumed
    with pytest.raises(NeuroDeconError, match="invalid voxel size"):
        read(p, voxel_size_um=(0.3, -1, 0.1))


def test_unit_table():
    assert unit_to_um("nm") == 1e-3
    assert unit_to_um("\u03bcm") == unit_to_um("\u00b5m") == unit_to_um("\\u00B5m") == 1.0
    assert unit_to_um("micrometer") == 1.0 and unit_to_um("millimeter") == 1e3
    assert unit_to_um("pixel") is None and unit_to_um(None) is None


def test_canonical_axes_moves_channels_first():
    data = np.zeros((3, 2, 4, 5))
    out, axes = canonical_axes(data, "ZCYX")
    assert axes == "CZYX" and out.shape == (2, 3, 4, 5)
    out, axes = canonical_axes(np.zeros((3, 4, 5)), "IYX")
    assert axes == "ZYX"


# --- OME-Zarr details ------------------------------------------------------------------------


def test_ome_zarr_metadata_is_ngff_and_readable_by_ome_zarr(tmp_path):
    """The written store is read by ome-zarr's own reader (an independent implementation)."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    data = _stack(dtype=np.uint16)
    write(tmp_path / "a.ome.zarr", Image(data=data, voxel_size_um=(0.3, 0.1, 0.05)), dtype="keep")
    node = next(iter(Reader(parse_url(str(tmp_path / "a.ome.zarr")))()))
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    assert all(a["unit"] == "micrometer" for a in node.metadata["axes"])
    scale = node.metadata["coordinateTransformations"][0][0]["scale"]
    np.testing.assert_allclose(scale, [0.3, 0.1, 0.05])
    np.testing.assert_array_equal(np.asarray(node.data[0]), data)


def test_ome_zarr_models_validates_written_store(tmp_path):
    import zarr

    # ome-zarr-models comes with ome-zarr >= 0.11; an independent validator of the NGFF 0.5 spec
    NgffImage = pytest.importorskip("ome_zarr_models.v05.image").Image

    write(tmp_path / "v.ome.zarr", Image(data=_stack(), voxel_size_um=(1, 0.5, 0.5)), dtype="keep")
    # from_zarr raises on a store that breaks the spec; what it parsed must be our metadata
    model = NgffImage.from_zarr(zarr.open_group(str(tmp_path / "v.ome.zarr"), mode="r"))
    multiscale = model.ome_attributes.multiscales[0]
    assert [(a.name, a.unit) for a in multiscale.axes] == [
        ("z", "micrometer"),
        ("y", "micrometer"),
        ("x", "micrometer"),
    ]
    (scale,) = [t for t in multiscale.datasets[0].coordinateTransformations if t.type == "scale"]
    np.testing.assert_allclose(scale.scale, [1.0, 0.5, 0.5])


def test_reads_ngff_04_v2_store_with_nanometre_units(tmp_path):
    """A store written the NGFF 0.4 way (zarr v2, top-level multiscales) by hand, units in nm."""
    import zarr

    data = _stack(dtype=np.uint8, shape=(2, 3, 4, 5))
    root = zarr.open_group(str(tmp_path / "old.zarr"), mode="w", zarr_format=2)
    root.create_array("s0", shape=data.shape, dtype=data.dtype)[...] = data
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"
    ]
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {
                    "path": "s0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 1, 1]}],
                }
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [1, 150.0, 65.0, 65.0]}],
        }
    ]
    img = read(tmp_path / "old.zarr")
    assert img.axes == "CZYX" and img.data.tobytes() == data.tobytes()
    np.testing.assert_allclose(img.voxel_size_um, (0.3, 0.065, 0.065), rtol=1e-9)


# --- output policy ------------------------------------------------------------------------------


def test_refuses_existing_output_and_input_and_overwrites_atomically(tmp_path):
    p = tmp_path / "o.tif"
    write(p, _stack(dtype=np.float32))
    with pytest.raises(NeuroDeconError, match="already exists"):
        write(p, _stack(dtype=np.float32, seed=1))
    with pytest.raises(NeuroDeconError, match="input"):
        write(p, _stack(dtype=np.float32, seed=1), overwrite=True, inputs=[str(p)])
    write(p, _stack(dtype=np.float32, seed=1), overwrite=True)
    np.testing.assert_array_equal(read(p).data, _stack(dtype=np.float32, seed=1))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["o.tif"]  # no temporary left behind


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import tifffile

    def boom(path, *a, **k):
        with open(path, "wb") as f:  # a partial file, as a full disk leaves one
            f.write(b"II*\x00")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path / "x.tif", _stack(dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_zarr_folder(tmp_path):
    p = tmp_path / "z.ome.zarr"
    write(p, _stack(dtype=np.float32))
    write(p, _stack(dtype=np.float32, seed=2), overwrite=True)
    np.testing.assert_array_equal(read(p).data, _stack(dtype=np.float32, seed=2))


def test_check_image_rules():
    good = Image(data=_stack(dtype=np.float32))
    check_image(good, "g", ndim=3)
    with pytest.raises(NeuroDeconError, match="expected a 3D image"):
        check_image(Image(data=np.ones((2, 2, 3, 4, 5)), axes="TCZYX"), "f.tif", ndim=3)
    with pytest.raises(NeuroDeconError, match="at least 2"):
        check_image(Image(data=np.arange(5.0), axes="X"), "f")
    bad = good.data.copy()
    bad[0, 0, 0], bad[1, 1, 1] = np.nan, np.inf
    with pytest.raises(NeuroDeconError, match="1 NaN and 1 Inf"):
        check_image(Image(data=bad), "f")
    with pytest.raises(NeuroDeconError, match="constant"):
        check_image(Image(data=np.zeros((2, 3, 3))), "f")
    check_image(Image(data=np.zeros((2, 3, 3))), "f", allow_constant=True)


def test_writer_json_is_valid_for_imagej_readers(tmp_path):
    """ImageJ keeps the provenance as a JSON string under the key 'neurodecon'."""
    p = tmp_path / "ij.tif"
    write(p, _stack(dtype=np.float32), provenance={"parameters": {"a": 1}})
    with tifffile.TiffFile(p) as tif:
        assert tif.is_imagej
        assert json.loads(tif.imagej_metadata["neurodecon"])["parameters"] == {"a": 1}


def test_extra_series_are_named_in_a_warning(tmp_path):
    p = tmp_path / "two.tif"
    with tifffile.TiffWriter(p) as w:
        w.write(_stack(), photometric="minisblack")
        w.write(_stack(shape=(5, 5))[None], photometric="minisblack")
    img = read(p)
    assert img.shape == (4, 6, 5)
    assert "2 image series" in img.metadata["warnings"][0]


def test_zarr_2_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    import zarr

    monkeypatch.setattr(zarr, "__version__", "2.18.3")
    with pytest.raises(NeuroDeconError, match=r"needs zarr>=3 \(installed: zarr 2\.18\.3\)"):
        write(tmp_path / "a.ome.zarr", _stack(dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


def test_cli_convert_uint16_records_scaling_and_info_shows_it(tmp_path, run_cli):
    src = tmp_path / "f.tif"
    data = np.linspace(-0.5, 2.0, 4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5)
    write(src, Image(data=data, voxel_size_um=(0.3, 0.1, 0.1)))
    code, out, err = run_cli("convert", src, tmp_path / "u.ome.tif", "--dtype", "uint16")
    assert code == 0, err
    code, out, err = run_cli("info", tmp_path / "u.ome.tif", "--json")
    info = json.loads(out)
    assert info["dtype"] == "uint16" and (info["min"], info["max"]) == (0, 65535)
    assert info["scaling"]["offset"] == pytest.approx(-0.5)
    assert info["scaling"]["scale"] == pytest.approx(2.5 / 65535)
    assert info["voxel_size_um"] == pytest.approx([0.3, 0.1, 0.1])
    back = read(tmp_path / "u.ome.tif", unscale=True).data
    np.testing.assert_allclose(back, data, atol=2.5 / 65535)
    code, out, _ = run_cli("info", tmp_path / "u.ome.tif")
    assert "scaling     value = stored * 3.81476e-05 + -0.5" in out
