"""``neurodecon demo --quick``: simulated data from the documented microscope, PSF from the beads,
classical methods (+ the shipped model when installed), ground truth, a complete report."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_report_compare import check_report

import neurodecon as nd


def test_demo_data_is_deterministic_and_matches_the_microscope():
    from neurodecon.psf import extract_psf, psf_info
    from neurodecon.report import demo_data, demo_microscope

    a, b = demo_data(quick=True), demo_data(quick=True)
    for key in ("sample", "truth", "beads", "psf"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["sample"].shape == a["truth"].shape and a["sample"].dtype == np.float32
    assert a["voxel_size_um"] == tuple(demo_microscope()["voxel_size_um"])
    # the PSF the demo extracts from its beads is the microscope's (bead size removed)
    res = extract_psf(
        a["beads"], voxel_size_um=a["voxel_size_um"], bead_diameter_um=a["bead_diameter_um"]
    )
    assert res.n_used >= 3
    true = psf_info(a["psf"], a["voxel_size_um"])["fwhm_um"]
    got = psf_info(res.psf, a["voxel_size_um"])["fwhm_um"]
    for axis in "zyx":
        assert got[axis] == pytest.approx(true[axis], rel=0.25), axis


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path, run_cli):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli("demo", "-o", out, "--quick")
    assert code == 0, stderr
    assert f"report: {out / 'report.html'}" in stdout
    # progress for every step, numbered up to the last
    steps = [tuple(map(int, m)) for m in re.findall(r"\] (\d+)/(\d+) ", stderr)]
    total = steps[-1][1]
    assert {s for s, t in steps if t == total} == set(range(total + 1))
    s = check_report(out)
    methods = s["methods"]
    assert {"raw", "wiener", "rl", "rltv", "truth"} <= set(methods)
    assert all(m["status"] == "ok" for m in methods.values())
    assert "ground truth" in s["ranking"]["criterion"] and s["ranking"]["order"][-1] == "raw"
    assert methods["rl"]["metrics"]["psnr"] > methods["raw"]["metrics"]["psnr"]
    assert "beads" in s["psf"]["source"] and s["psf"]["n_beads_used"] >= 3
    assert "fig-beads" in s["figures"]
    from neurodecon.learn import default_model_path

    if (default_model_path() / "config.json").is_file():
        assert methods["neurodecon"]["status"] == "ok"
        # both trust maps: consistency for every method, the flip spread for the network
        assert {"fig-consistency", "fig-uncertainty"} <= set(s["figures"])
        assert methods["neurodecon"]["parameters"]["uncertainty_output"].endswith(".tif")
    # the inputs are written, with the microscope's voxel size, to re-run compare on them
    for name in ("sample", "beads", "truth", "true_psf"):
        img = nd.read(out / "inputs" / f"{name}.tif")
        assert img.voxel_size_um == pytest.approx(tuple(s["voxel_size_um"]))
    code, _, err = run_cli("demo", "-o", out, "--quick")
    assert code == 2 and "--overwrite" in err
