"""End-to-end: ``neurodecon psf generate``, ``psf info`` and ``simulate``."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_psf_generate_writes_a_centred_psf_with_its_voxel_size(run_cli, tmp_path):
    from neurodecon.io import read

    out = tmp_path / "psf.tif"
    code, stdout, err = run_cli(
        "psf",
        "generate",
        "--model",
        "confocal",
        "--na",
        "1.3",
        "--wavelength",
        "0.52",
        "--excitation-wavelength",
        "0.488",
        "--immersion-index",
        "1.515",
        "--pinhole",
        "0.8",
        "--voxel-size",
        "0.12",
        "0.04",
        "0.04",
        "--shape",
        "24",
        "40",
        "40",
        "-o",
        out,
    )
    assert code == 0, err
    img = read(out)
    assert img.data.shape == (24, 40, 40) and img.data.dtype == np.float32
    assert img.voxel_size_um == pytest.approx((0.12, 0.04, 0.04))
    assert abs(float(img.data.sum()) - 1) < 1e-4
    assert np.unravel_index(int(np.argmax(img.data)), img.data.shape) == (12, 20, 20)
    assert img.metadata["provenance"]["parameters"]["model"] == "confocal"


def test_psf_info_json_reports_what_was_generated(run_cli, tmp_path):
    out = tmp_path / "g.tif"
    code, _, err = run_cli(
        "psf",
        "generate",
        "--model",
        "gaussian",
        "--fwhm",
        "0.6",
        "0.2",
        "0.25",
        "--voxel-size",
        "0.1",
        "0.05",
        "0.05",
        "--shape",
        "31",
        "31",
        "31",
        "-o",
        out,
    )
    assert code == 0, err
    code, stdout, err = run_cli("psf", "info", out, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["centred"] and info["peak"] == [15, 15, 15]
    assert info["fwhm_um"]["z"] == pytest.approx(0.6, rel=1e-3)
    assert info["fwhm_um"]["y"] == pytest.approx(0.2, rel=1e-3)
    assert info["fwhm_um"]["x"] == pytest.approx(0.25, rel=1e-3)
    code, text, _ = run_cli("psf", "info", out)
    assert code == 0 and "FWHM" in text and "centred" in text


def test_psf_info_on_real_data_flags_the_uncentred_psfgenerator_psf(run_cli, shared_data):
    code, stdout, err = run_cli(
        "psf", "info", shared_data / "flowdec" / "psfs" / "psfgen1.tif", "--json"
    )
    assert code == 0, err
    info = json.loads(stdout)
    assert info["voxel_size_um"] == pytest.approx([0.25, 0.1, 0.1])  # from the ImageJ metadata
    assert info["peak"] == [3, 7, 7] and not info["centred"]  # PSFGenerator centres at (n − 1)/2


def test_psf_generate_user_errors_are_one_line(run_cli, tmp_path):
    code, _, err = run_cli(
        "psf",
        "generate",
        "--model",
        "widefield",
        "--na",
        "1.6",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--shape",
        "9",
        "9",
        "9",
        "-o",
        tmp_path / "p.tif",
    )
    assert code == 2 and err.startswith("error:") and "NA" in err and "Traceback" not in err
    code, _, err = run_cli(
        "psf",
        "generate",
        "--model",
        "two-photon",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--shape",
        "9",
        "9",
        "9",
        "-o",
        tmp_path / "p.tif",
    )
    assert code == 2 and "--excitation-wavelength" in err


def test_simulate_writes_the_four_files_and_refuses_to_overwrite(run_cli, tmp_path):
    from neurodecon.io import read

    out = tmp_path / "sim"
    args = (
        "simulate",
        "--phantom",
        "tubes,puncta",
        "--shape",
        "12",
        "32",
        "32",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--model",
        "widefield",
        "--na",
        "1.2",
        "--photons",
        "300",
        "--background",
        "5",
        "--read-noise",
        "2",
        "--seed",
        "4",
        "-o",
        out,
    )
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "image.tif",
        "psf.tif",
        "simulation.json",
        "truth.tif",
    ]
    truth, image, psf = (read(out / f"{n}.tif") for n in ("truth", "image", "psf"))
    for img in (truth, image, psf):
        assert img.voxel_size_um == pytest.approx((0.2, 0.1, 0.1))
    assert truth.data.shape == image.data.shape == (12, 32, 32)
    assert image.data.mean() > 5  # background + signal
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["seed"] == 4 and meta["photons"] == 300 and meta["read_noise"] == 2
    assert meta["psf"]["model"] == "widefield" and meta["psf"]["na"] == 1.2
    assert meta["version"]

    code, _, err = run_cli(*args)
    assert code == 2 and "not empty" in err and "--overwrite" in err
    code, _, err = run_cli(*args, "--seed", "5", "--overwrite")
    assert code == 0, err
    assert json.loads((out / "simulation.json").read_text())["seed"] == 5


def test_simulate_with_a_psf_file_resamples_it_to_the_voxel_size(run_cli, tmp_path):
    from neurodecon.io import read

    psf_path = tmp_path / "fine.tif"
    code, _, err = run_cli(
        "psf",
        "generate",
        "--model",
        "gaussian",
        "--fwhm",
        "0.8",
        "0.3",
        "0.3",
        "--voxel-size",
        "0.1",
        "0.05",
        "0.05",
        "--shape",
        "31",
        "41",
        "41",
        "-o",
        psf_path,
    )
    assert code == 0, err
    out = tmp_path / "sim"
    code, _, err = run_cli(
        "simulate",
        "--phantom",
        "beads",
        "--shape",
        "16",
        "32",
        "32",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--psf",
        psf_path,
        "--no-poisson",
        "-o",
        out,
    )
    assert code == 0, err
    psf = read(out / "psf.tif").data
    assert psf.shape[0] in (15, 16) and psf.shape[1] in (20, 21)  # same µm extent, half the voxels
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["psf"]["source"].endswith("fine.tif") and meta["photons"] is None


def test_simulate_without_a_psf_is_a_user_error(run_cli, tmp_path):
    code, _, err = run_cli(
        "simulate",
        "--phantom",
        "tubes",
        "--shape",
        "8",
        "8",
        "8",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "-o",
        tmp_path / "s",
    )
    assert code == 2 and "no PSF" in err
    code, _, err = run_cli(
        "simulate",
        "--phantom",
        "blobs",
        "--shape",
        "8",
        "8",
        "8",
        "--voxel-size",
        "0.2",
        "0.1",
        "0.1",
        "--model",
        "gaussian",
        "-o",
        tmp_path / "s",
    )
    assert code == 2 and "unknown phantom" in err


def test_top_level_api_exposes_the_physics():
    import neurodecon as nd
    from neurodecon import psf, synth

    assert nd.make_psf is psf.make_psf
    assert nd.phantom is synth.phantom and nd.forward_model is synth.forward_model
    assert nd.simulate is synth.simulate
