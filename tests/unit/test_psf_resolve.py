"""One PSF path: ``resolve_psf`` and the commands that use it give the same kernel."""

from __future__ import annotations

import numpy as np
import pytest

import neurodecon as nd
from neurodecon.errors import NeuroDeconError
from neurodecon.psf import default_psf_shape, make_psf, prepare_psf, resolve_psf

VOX = (0.2, 0.1, 0.1)


def _beads(tmp_path, shape=(24, 96, 96)):
    """A small bead stack (Gaussian PSF, 9 beads of 0.1 µm, offset 100) written as a TIFF."""
    from neurodecon.synth import forward_model

    truth = np.zeros(shape, np.float32)
    rng = np.random.default_rng(3)
    for y in (20, 48, 76):
        for x in (20, 48, 76):
            truth[12 + rng.integers(-2, 3), y + rng.integers(-2, 3), x + rng.integers(-2, 3)] = 1
    psf = make_psf("gaussian", shape=(15, 15, 15), voxel_size_um=VOX, fwhm_um=(0.7, 0.25, 0.25))
    stack = forward_model(truth, psf, photons=3000, background=100, read_noise=2, seed=4)
    path = tmp_path / "beads.tif"
    nd.write(path, stack, voxel_size_um=VOX)
    return path


def test_model_psf_is_odd_centred_unit_and_sized_from_the_optics():
    r = resolve_psf(
        image_shape=(40, 128, 128),
        image_voxel_size_um=VOX,
        model="widefield",
        optics={"na": 1.3, "wavelength_um": 0.52},
    )
    assert r.psf.shape == default_psf_shape("widefield", (40, 128, 128), VOX, na=1.3)
    assert all(n % 2 == 1 for n in r.psf.shape) and r.psf.dtype == np.float32
    assert r.psf.sum() == pytest.approx(1.0, abs=1e-5) and r.psf.min() >= 0
    peak = np.unravel_index(int(np.argmax(r.psf)), r.psf.shape)
    assert tuple(int(p) for p in peak) == tuple(n // 2 for n in r.psf.shape)
    assert r.source == "model" and r.record["model"] == "widefield" and r.record["na"] == 1.3
    # never larger than the image
    small = resolve_psf(image_shape=(9, 20, 20), image_voxel_size_um=VOX, model="widefield")
    assert all(p <= i for p, i in zip(small.psf.shape, (9, 20, 20), strict=True))


def test_file_psf_is_resampled_to_the_image_voxel_size(tmp_path):
    psf = make_psf("gaussian", shape=(21, 31, 31), voxel_size_um=(0.1, 0.05, 0.05))
    nd.write(tmp_path / "psf.tif", psf, voxel_size_um=(0.1, 0.05, 0.05))
    r = resolve_psf(image_shape=(30, 64, 64), image_voxel_size_um=VOX, psf=tmp_path / "psf.tif")
    expected = prepare_psf(
        psf,
        image_shape=(30, 64, 64),
        psf_voxel_size_um=(0.1, 0.05, 0.05),
        image_voxel_size_um=VOX,
    )
    np.testing.assert_array_equal(r.psf, expected)
    assert r.psf.shape == (11, 15, 15) and r.source == "file"  # odd, same extent
    assert r.record["voxel_size_um"] == [0.1, 0.05, 0.05]


def test_exactly_one_source_and_the_bead_diameter_are_required(tmp_path):
    with pytest.raises(NeuroDeconError, match="no PSF given"):
        resolve_psf(image_shape=(8, 8, 8), image_voxel_size_um=VOX)
    with pytest.raises(NeuroDeconError, match="exactly one"):
        resolve_psf(
            image_shape=(8, 8, 8),
            image_voxel_size_um=VOX,
            psf=np.ones((3, 3, 3)),
            model="gaussian",
        )
    with pytest.raises(NeuroDeconError, match="bead diameter"):
        resolve_psf(image_shape=(8, 8, 8), image_voxel_size_um=VOX, beads=_beads(tmp_path))
    with pytest.raises(NeuroDeconError, match="unknown optics"):
        resolve_psf(
            image_shape=(8, 8, 8), image_voxel_size_um=VOX, model="widefield", optics={"NA": 1}
        )


@pytest.mark.parametrize("source", ["beads", "model", "file"])
def test_deconvolve_and_compare_use_the_identical_psf(tmp_path, run_cli, source):
    """The PSF ``deconvolve --psf-out`` writes equals the one ``compare`` reports and uses."""
    sample = np.random.default_rng(0).uniform(50, 150, (24, 96, 96)).astype(np.float32)
    nd.write(tmp_path / "sample.tif", sample, voxel_size_um=VOX)
    if source == "beads":
        args = ["--beads", _beads(tmp_path), "--bead-diameter", "0.1"]
    elif source == "model":
        args = ["--model", "widefield", "--na", "1.3", "--psf-shape", "15", "31", "31"]
    else:
        psf = make_psf("gaussian", shape=(21, 31, 31), voxel_size_um=(0.1, 0.05, 0.05))
        nd.write(tmp_path / "psf.tif", psf, voxel_size_um=(0.1, 0.05, 0.05))
        args = ["--psf", tmp_path / "psf.tif"]
    code, _, err = run_cli(
        "deconvolve",
        tmp_path / "sample.tif",
        *args,
        "--iterations",
        "2",
        "--psf-out",
        tmp_path / "used_psf.tif",
        "-o",
        tmp_path / "out.tif",
        "--device",
        "cpu",
    )
    assert code == 0, err
    code, _, err = run_cli(
        "compare",
        tmp_path / "sample.tif",
        *args,
        "--methods",
        "wiener",
        "-o",
        tmp_path / "report",
        "--device",
        "cpu",
    )
    assert code == 0, err
    a = nd.read(tmp_path / "used_psf.tif").data
    b = nd.read(tmp_path / "report" / "results" / "psf.tif").data
    np.testing.assert_array_equal(a, b)
    assert a.sum() == pytest.approx(1.0, abs=1e-5)
    # provenance says where it came from
    meta = nd.read(tmp_path / "out.tif").metadata
    assert source in str(meta) or "extracted" in str(meta)
