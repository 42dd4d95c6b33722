"""Bead PSF extraction on the real bead stacks in ../shared/data, through the API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurodecon as nd
from neurodecon.metrics import bead_fwhm
from neurodecon.psf import extract_psf

HOOG_VOX = (0.3, 0.108, 0.108)  # parameters.txt of the PSF-Extractor sample (z is not in the TIFFs)


@pytest.fixture(scope="module")
def hoogenboom(shared_data):
    folder = shared_data / "psf_extractor_hoogenboom" / "sample_zstack"
    return folder, nd.read(folder, voxel_size_um=HOOG_VOX)


@pytest.fixture(scope="module")
def hoogenboom_result(hoogenboom):
    return extract_psf(hoogenboom[1], bead_diameter_um=0.2)


def test_hoogenboom_uses_30_beads_and_matches_psf_extractor(hoogenboom, hoogenboom_result):
    folder, _ = hoogenboom
    res = hoogenboom_result
    assert res.n_used >= 30
    import tifffile

    ref = tifffile.imread(folder / "_output" / "psf_av.tif").astype(np.float32)
    ref_fwhm = np.asarray(bead_fwhm(ref, (0.06, 0.0216, 0.0216)))  # 5x upsampled grid
    # psf_av is an average of bead images (bead not removed): compare with o*
    assert np.allclose(res.fwhm_um, ref_fwhm, rtol=0.10), (res.fwhm_um, ref_fwhm)
    # the spread across beads is small compared with the FWHM, the bead removal narrows it
    assert np.all(np.asarray(res.fwhm_spread_um) < 0.1 * np.asarray(res.fwhm_um))
    assert np.all(np.asarray(res.psf_fwhm_um) < np.asarray(res.fwhm_um))
    # every rejection has a known reason, and positions are inside the stack
    assert set(res.rejection_counts) <= {
        "saturated",
        "border",
        "close",
        "fit",
        "bright",
        "dim",
        "shape",
        "mismatch",
    }
    assert res.n_used + len(res.rejected) == res.info["n_detected"]


def test_cli_extract_writes_kernels_report_and_json(hoogenboom, run_cli, tmp_path):
    folder, _ = hoogenboom
    out = tmp_path / "psf.tif"
    code, stdout, err = run_cli(
        "psf",
        "extract",
        folder,
        "--bead-diameter",
        "0.2",
        "--voxel-size",
        *HOOG_VOX,
        "-o",
        out,
        "--blurred-bead-out",
        tmp_path / "o.tif",
        "--ideal-bead-out",
        tmp_path / "i.ome.tif",
        "--report",
        tmp_path / "qc.png",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["n_used"] >= 30
    assert len(summary["positions_used_zyx"]) == summary["n_used"]
    assert (
        len(summary["rejected"])
        == summary["n_rejected"]
        == summary["n_detected"] - summary["n_used"]
    )
    for name in ("psf.tif", "o.tif", "i.ome.tif"):
        img = nd.read(tmp_path / name)
        assert img.voxel_size_um == pytest.approx(HOOG_VOX, rel=1e-4)
        assert img.data.sum() == pytest.approx(1.0, abs=1e-4)
        assert img.data.shape == tuple(summary["shape"])
    png = (tmp_path / "qc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    # an existing output is refused before any work, with one line
    code, _, err = run_cli(
        "psf", "extract", folder, "--bead-diameter", "0.2", "--voxel-size", *HOOG_VOX, "-o", out
    )
    assert code == 2 and err.count("\n") == 1 and "already exists" in err


def test_cli_extract_text_summary_on_confocal_beads(shared_data, run_cli, tmp_path):
    beads = shared_data / "bioimage_analysis_notebooks" / "Bead_Image1_crop.tif"
    code, out, err = run_cli(
        "psf",
        "extract",
        beads,
        "--bead-diameter",
        "0.1",
        "-o",
        tmp_path / "psf.tif",
        "--report",
        tmp_path / "qc.png",
        "--log-scale",
    )
    assert code == 0, err
    assert "beads used:" in out and "FWHM o* (µm):" in out
    assert "left out (z, y, x) = (24, 82, 75): bright" in out  # 151 counts vs 70-87: 2x brighter
    res = extract_psf(nd.read(beads), bead_diameter_um=0.1)
    assert res.n_used >= 3
    # documented single-bead FWHM (PROVENANCE.md): about 0.57 µm axial, 0.23 µm y, 0.16 µm x
    assert np.allclose(res.fwhm_um, (0.57, 0.23, 0.16), rtol=0.12), res.fwhm_um
    assert (tmp_path / "qc.png").stat().st_size > 50_000


def test_cli_no_beads_one_line_error(run_cli, tmp_path):
    noise = np.random.default_rng(1).poisson(5, (16, 64, 64)).astype(np.uint16)
    np.save(tmp_path / "noise.npy", noise)
    code, out, err = run_cli(
        "psf",
        "extract",
        tmp_path / "noise.npy",
        "--bead-diameter",
        "0.2",
        "--voxel-size",
        "0.3",
        "0.1",
        "0.1",
        "-o",
        tmp_path / "psf.tif",
    )
    assert code == 2
    assert (
        err.startswith(f"error: {tmp_path / 'noise.npy'}: no beads found") and err.count("\n") == 1
    )
    assert not (tmp_path / "psf.tif").exists()


@pytest.mark.slow
def test_frt_leica_rgb_series_rejects_saturated_beads(shared_data):
    folder = shared_data / "FRT_simple_psf_extractor" / "tiff_series_project"
    image = nd.read(folder)  # RGB planes; the reader keeps the green channel
    assert image.data.ndim == 3
    res = extract_psf(image, bead_diameter_um=0.1)
    counts = res.rejection_counts
    assert counts.get("saturated", 0) >= 1
    assert res.n_used >= 30
    # no used bead touches 255 in its core
    data = image.data
    for z, y, x in np.round(res.positions).astype(int):
        assert data[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2].max() < 255
    # confocal NA 1.4: sub-300 nm lateral, sub-micron axial
    assert res.fwhm_um[0] < 1.0 and max(res.fwhm_um[1:]) < 0.35


def test_docs_python_example_runs(shared_data, tmp_path, monkeypatch, capsys):
    """The Python block of docs/beads.md runs as written (data path pointed at shared_data)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "beads.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace("../shared/data", str(shared_data))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/beads.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3 {'bright': 1}"
    assert (tmp_path / "qc.png").exists()
