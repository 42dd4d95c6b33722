"""The plugin without a viewer: manifest, reader/writer round trips, sample data, helpers."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurodecon as nd


def test_npe2_validate_passes():
    exe = shutil.which("npe2", path=str(Path(sys.executable).parent)) or shutil.which("npe2")
    assert exe, "the npe2 command is missing"
    run = subprocess.run([exe, "validate", "neurodecon"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valid" in run.stdout


def test_manifest_contributions_resolve():
    from npe2 import PluginManager

    pm = PluginManager()
    pm.discover()
    manifest = pm.get_manifest("neurodecon")
    contrib = manifest.contributions
    assert {w.display_name for w in contrib.widgets} == {
        "PSF from beads",
        "Deconvolve",
        "Train a model",
        "Compare methods",
        "Isotropic restoration",
    }
    assert {s.key for s in contrib.sample_data} == {"demo_stack", "demo_beads"}
    assert contrib.readers and contrib.writers
    for command in contrib.commands:
        assert callable(command.exec) or command.python_name  # importable below
        module, name = command.python_name.split(":")
        assert callable(getattr(__import__(module, fromlist=[name]), name))


def test_importing_neurodecon_imports_no_qt_nor_napari():
    code = (
        "import sys, numpy as np, neurodecon as nd\n"
        "nd.read, nd.deconvolve, nd.compare, nd.train, nd.extract_psf, nd.isotropic\n"
        "import neurodecon.cli, neurodecon.report, neurodecon.learn\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'qtpy', 'magicgui', 'superqt'))\n"
        "print(bad)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["stack.tif", "stack.ome.tif", "stack.ome.zarr", "stack.npy"])
def test_writer_then_reader_keep_the_voxel_size_as_scale(tmp_path, name):
    from neurodecon.napari._io import get_reader, write_image

    data = np.random.default_rng(0).random((4, 8, 6), dtype=np.float32)
    scale = [0.3, 0.065, 0.065]
    (path,) = write_image(str(tmp_path / name), data, {"scale": scale, "name": "x"})
    reader = get_reader(path)
    assert reader is not None
    ((out, meta, kind),) = reader(path)
    assert kind == "image" and meta["name"] == "stack"
    np.testing.assert_array_equal(out, data)
    if name.endswith(".npy"):  # .npy has no metadata: the voxel size is assumed (1 µm)
        assert meta["scale"] == [1.0, 1.0, 1.0]
    else:
        np.testing.assert_allclose(meta["scale"], scale, rtol=1e-6)


def test_reader_reads_a_folder_of_planes_as_one_stack(tmp_path):
    import tifffile

    from neurodecon.napari._io import get_reader

    for z in range(3):
        tifffile.imwrite(tmp_path / f"plane_{z}.tif", np.full((4, 5), z, np.uint16))
    ((data, meta, _),) = get_reader(str(tmp_path))(str(tmp_path))
    assert data.shape == (3, 4, 5) and list(data[:, 0, 0]) == [0, 1, 2]
    assert len(meta["scale"]) == 3


def test_reader_declines_what_it_does_not_read(tmp_path):
    from neurodecon.napari._io import get_reader

    assert get_reader(str(tmp_path / "notes.txt")) is None
    (tmp_path / "notes.txt").write_text("x")
    assert get_reader(str(tmp_path)) is None  # a folder without TIFF planes
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) is None


def test_reader_splits_channels_and_keeps_spatial_scale(tmp_path):
    from neurodecon.napari._io import read_layers

    img = nd.Image(np.ones((2, 3, 4, 4), np.float32), voxel_size_um=(0.5, 0.1, 0.1), axes="CZYX")
    path = nd.write(tmp_path / "two.tif", img)
    ((data, meta, _),) = read_layers(str(path))
    assert data.shape == (2, 3, 4, 4) and meta["channel_axis"] == 0
    np.testing.assert_allclose(meta["scale"], (0.5, 0.1, 0.1))


def test_writer_refuses_2d_with_one_line(tmp_path):
    from neurodecon.napari._io import write_image

    with pytest.raises(nd.NeuroDeconError, match="3-D"):
        write_image(str(tmp_path / "flat.tif"), np.zeros((4, 4)), {"scale": [1, 1]})


def test_sample_data_are_the_demo_on_its_voxel_size():
    from neurodecon.napari._sample import demo_beads, demo_stack
    from neurodecon.report import demo_microscope

    (sample, smeta, _), (truth, tmeta, _) = demo_stack()
    ((beads, bmeta, _),) = demo_beads()
    vs = list(demo_microscope()["voxel_size_um"])
    assert sample.shape == truth.shape == (24, 64, 64) and beads.shape == (32, 160, 160)
    assert smeta["scale"] == tmeta["scale"] == bmeta["scale"] == vs
    assert tmeta["visible"] is False
    assert sample.dtype == np.float32


def test_ranked_rows_are_best_first():
    from neurodecon.napari._compare_widget import ranked_rows

    summary = {
        "ranking": {"metrics": ["psnr"]},
        "methods": {
            "raw": {"rank": 3, "metrics": {"psnr": 10.0}},
            "rl": {
                "rank": 1,
                "spec": "rl",
                "time_s": 1.234,
                "iterations": 5,
                "metrics": {"psnr": 20.0},
            },
            "wiener": {"rank": 2, "spec": "wiener", "metrics": {"psnr": 15.0}},
            "bad": {"rank": None, "spec": "tm", "status": "failed", "metrics": {}},
        },
    }
    rows, columns = ranked_rows(summary)
    assert columns == ["rank", "method", "time (s)", "iterations", "psnr"]
    assert [r[1] for r in rows] == ["rl", "wiener", "raw", "tm"]
    assert rows[0] == [1, "rl", 1.23, 5, 20.0]


def test_blocked_output_opens_with_its_voxel_size_as_scale(tmp_path):
    """An OME-Zarr written block by block (neurodecon.blocked) opens in napari through the
    plugin's reader with the voxel size as the layer's scale (issue 17)."""
    from conftest import gaussian_kernel

    from neurodecon.blocked import deconvolve_blocked
    from neurodecon.napari._io import get_reader

    img = np.random.default_rng(0).poisson(20.0, (16, 48, 40)).astype(np.float32)
    opts = {"iterations": 2, "block": (8, 24, 24), "voxel_size_um": (0.3, 0.11, 0.11)}
    run = deconvolve_blocked(img, tmp_path / "b.ome.zarr", gaussian_kernel(), "rl", **opts)
    reader = get_reader(str(run.output))
    assert reader is not None
    (data, meta, kind), *_ = reader(str(run.output))
    assert kind == "image" and np.asarray(data).shape == img.shape
    assert tuple(meta["scale"])[-3:] == pytest.approx((0.3, 0.11, 0.11))
