"""Every bad input gets one line ``error: PATH: problem. fix.``, exit code 2, no traceback.

Checked through the CLI.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import tifffile


def assert_one_line_error(code, out, err, path, *words):
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err
    assert str(path) in line, line
    for w in words:
        assert w.lower() in line.lower(), (w, line)
    # problem and fix: "error: PATH: problem. fix."
    assert line.endswith(".") and line.count(". ") >= 1, line
    return line


def _good_stack(path, dtype=np.uint16):
    data = (np.arange(4 * 16 * 16) % 251).astype(dtype).reshape(4, 16, 16)
    tifffile.imwrite(path, data, photometric="minisblack")
    return data


def test_missing_file(run_cli, tmp_path):
    p = tmp_path / "nope.tif"
    assert_one_line_error(*run_cli("info", p), p, "not found", "check the path")


def test_missing_series_folder_and_empty_glob(run_cli, tmp_path):
    assert_one_line_error(
        *run_cli("info", tmp_path / "nofolder"), tmp_path / "nofolder", "not found"
    )
    pattern = tmp_path / "*.tif"
    assert_one_line_error(
        *run_cli("convert", pattern, tmp_path / "o.ome.tif"), pattern, "no files match"
    )


def test_not_an_image_text_named_tif(run_cli, tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("these are my notes, not an image\n")
    assert_one_line_error(*run_cli("info", p), p, "not a TIFF")


def test_truncated_tiff_is_refused_not_read_partially(run_cli, tmp_path):
    """An OME-TIFF cut in half: tifffile alone would return only the first plane."""
    full, cut = tmp_path / "full.ome.tif", tmp_path / "cut.ome.tif"
    tifffile.imwrite(
        full, (np.arange(4 * 64 * 64) % 251).astype(np.uint16).reshape(4, 64, 64), ome=True
    )
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert_one_line_error(*run_cli("info", cut), cut, "damaged or truncated", "copy it again")


def test_not_an_image_text_named_npy_and_unknown_extension(run_cli, tmp_path):
    p = tmp_path / "a.npy"
    p.write_text("hello")
    assert_one_line_error(*run_cli("info", p), p, "not a readable .npy")
    q = tmp_path / "a.png"
    q.write_bytes(b"\x89PNG")
    assert_one_line_error(*run_cli("info", q), q, "unrecognised file type", ".ome.tif")


def test_not_an_image_zarr_folders(run_cli, tmp_path):
    import zarr

    junk = tmp_path / "junk.ome.zarr"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    assert_one_line_error(*run_cli("info", junk), junk, "not a readable Zarr store")
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").attrs["a"] = 1
    assert_one_line_error(*run_cli("info", plain), plain, "multiscales")


def test_folder_without_tiffs(run_cli, tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    assert_one_line_error(*run_cli("info", tmp_path), tmp_path, "no TIFF files")


def test_unknown_compression_code(run_cli, tmp_path):
    """A real file on disk whose Compression tag names a scheme no codec implements (33333)."""
    p = tmp_path / "weird.tif"
    _good_stack(p)
    with tifffile.TiffFile(p) as tif:
        offsets = [page.tags["Compression"].valueoffset for page in tif.pages]
    raw = bytearray(p.read_bytes())
    for off in offsets:
        raw[off : off + 2] = struct.pack("<H", 33333)
    p.write_bytes(bytes(raw))
    assert_one_line_error(*run_cli("info", p), p, "compression", "re-save")


def test_corrupt_compressed_data(run_cli, tmp_path):
    """Deflate-compressed strips overwritten with garbage: the codec fails while decoding."""
    p = tmp_path / "corrupt.tif"
    data = (np.arange(4 * 32 * 32) % 251).astype(np.uint16).reshape(4, 32, 32)
    tifffile.imwrite(p, data, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(p) as tif:
        strips = [(pg.dataoffsets[0], pg.databytecounts[0]) for pg in tif.pages]
    raw = bytearray(p.read_bytes())
    for off, n in strips:
        raw[off + 2 : off + n] = b"\xab" * (n - 2)
    p.write_bytes(bytes(raw))
    assert_one_line_error(*run_cli("info", p), p, "cannot be decoded", "DEFLATE")


def test_missing_codec_package(tmp_path):
    """Simulated machine without imagecodecs.

    A subprocess blocks the import, then reads an LZW TIFF.
    """
    p = tmp_path / "lzw.tif"
    data = (np.arange(4 * 16 * 16) % 251).astype(np.uint8).reshape(4, 16, 16)
    tifffile.imwrite(p, data, compression="lzw", photometric="minisblack")
    code = (
        "import sys; sys.modules['imagecodecs'] = None\n"
        "from neurodecon.cli import main\n"
        f"sys.exit(main(['info', {str(p)!r}]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert_one_line_error(
        res.returncode, res.stdout, res.stderr, p, "LZW", "imagecodecs", "pip install imagecodecs"
    )


def test_wrong_dimensionality_1d(run_cli, tmp_path):
    p = tmp_path / "line.npy"
    np.save(p, np.arange(10.0))
    assert_one_line_error(*run_cli("info", p), p, "at least 2 dimensions", "3D stack")


def test_wrong_dimensionality_6d(run_cli, tmp_path):
    p = tmp_path / "six.npy"
    np.save(p, np.ones((2, 2, 2, 2, 2, 2)))
    assert_one_line_error(*run_cli("convert", p, tmp_path / "o.ome.tif"), p, "6D", "T, C, Z, Y, X")


def test_wrong_dimensionality_5d_where_3d_is_needed(run_cli, tmp_path):
    """A TCZYX OME-TIFF is read fine (info).

    A command that needs one (Z, Y, X) stack refuses it.
    """
    p = tmp_path / "five.ome.tif"
    data = (np.arange(2 * 2 * 3 * 8 * 8) % 97).astype(np.uint16).reshape(2, 2, 3, 8, 8)
    tifffile.imwrite(p, data, ome=True, metadata={"axes": "TCZYX"})
    code, out, err = run_cli("info", p, "--json")
    assert code == 0 and json.loads(out)["axes"] == "TCZYX"
    assert_one_line_error(*run_cli("psf", "info", p), p, "expected", "(Z, Y, X)")


def test_nan_and_inf_values(run_cli, tmp_path):
    p = tmp_path / "nan.tif"
    data = np.ones((3, 8, 8), np.float32)
    data[0, 0, 0], data[1, 2, 3], data[2, 2, 2] = np.nan, np.inf, 2.0
    tifffile.imwrite(p, data, photometric="minisblack")
    assert_one_line_error(*run_cli("info", p), p, "1 NaN and 1 Inf", "replace them")


def test_empty_image(run_cli, tmp_path):
    p = tmp_path / "empty.npy"
    np.save(p, np.zeros((0, 8, 8), np.float32))
    assert_one_line_error(*run_cli("info", p), p, "empty")


def test_constant_image_is_read_but_not_deconvolved(run_cli, tmp_path):
    """Readers read any valid file (issue: robustness); only commands that compute refuse it."""
    p = tmp_path / "flat.tif"
    tifffile.imwrite(p, np.full((3, 8, 8), 7, np.uint16), photometric="minisblack")
    code, out, _ = run_cli("info", p, "--json")
    assert code == 0 and json.loads(out)["min"] == json.loads(out)["max"] == 7
    code, _, _ = run_cli("convert", p, tmp_path / "o.tif")
    assert code == 0 and (tifffile.imread(tmp_path / "o.tif") == 7).all()
    out = tmp_path / "d.tif"
    args = ("deconvolve", p, "--model", "gaussian", "--fwhm", "2", "2", "2", "-o", out)
    assert_one_line_error(*run_cli(*args), p, "constant", "every voxel is 7")
    assert not out.exists()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not block reading, so a real "
    "permission error cannot be produced (see the simulated test below)",
)
def test_permission_denied_real(run_cli, tmp_path):
    p = tmp_path / "locked.tif"
    _good_stack(p)
    p.chmod(0)
    try:
        assert_one_line_error(*run_cli("info", p), p, "permission denied", "chmod")
    finally:
        p.chmod(0o644)


def test_permission_denied_simulated(run_cli, tmp_path, monkeypatch):
    """The OS's PermissionError is injected where tifffile opens the file (works as root too)."""
    import tifffile

    p = tmp_path / "locked.tif"
    _good_stack(p)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(tifffile, "TiffFile", denied)
    assert_one_line_error(*run_cli("info", p), p, "permission denied", "chmod")


def test_output_folder_not_writable_simulated(run_cli, tmp_path, monkeypatch):
    """os.access reports the folder as not writable.

    As root a real chmod would not block writing.
    """
    src = tmp_path / "in.tif"
    _good_stack(src)
    out = tmp_path / "o.ome.tif"
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode)
    )
    code, stdout, err = run_cli("convert", src, out)
    assert code == 5  # exit code 5: cannot write there (was 2 before the exit codes were split)
    assert_one_line_error(2, stdout, err, out, "permission denied", "folder")


def test_output_exists_without_overwrite(run_cli, tmp_path):
    src, out = tmp_path / "in.tif", tmp_path / "out.ome.tif"
    _good_stack(src)
    out.write_bytes(b"precious")
    assert_one_line_error(*run_cli("convert", src, out), out, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    code, _, _ = run_cli("convert", src, out, "--overwrite")
    assert code == 0 and out.read_bytes() != b"precious"


def test_output_equals_input(run_cli, tmp_path):
    src = tmp_path / "in.tif"
    data = _good_stack(src)
    before = src.read_bytes()
    assert_one_line_error(*run_cli("convert", src, src, "--overwrite"), src, "input")
    assert src.read_bytes() == before
    np.testing.assert_array_equal(tifffile.imread(src), data)


def test_output_is_a_plane_of_the_input_series(run_cli, tmp_path):
    for i in range(3):
        tifffile.imwrite(tmp_path / f"p_z{i}.tif", np.full((8, 8), i, np.uint8))
    target = tmp_path / "p_z1.tif"
    assert_one_line_error(*run_cli("convert", tmp_path, target, "--overwrite"), target, "input")


def test_bad_voxel_size_and_output_type(run_cli, tmp_path):
    src = tmp_path / "in.tif"
    _good_stack(src)
    assert_one_line_error(
        *run_cli("info", src, "--voxel-size", "0.3", "0", "0.1"), src, "invalid voxel size"
    )
    out = tmp_path / "out.png"
    assert_one_line_error(*run_cli("convert", src, out), out, "unrecognised output type")
