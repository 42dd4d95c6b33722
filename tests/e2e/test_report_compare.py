"""``compare``: the report's pieces exist and agree (HTML, PNGs, tables, metrics.json/csv, results),
through the Python API and the CLI, on synthetic data and on real stacks."""

from __future__ import annotations

import base64
import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import neurodecon as nd

VS = (0.2, 0.08, 0.08)


class _Page(HTMLParser):
    """Collects images, tables (rows of cell texts), element ids, links and the contents list."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.tables: dict[str, dict] = {}
        self.ids: dict[str, str] = {}
        self.links: list[str] = []
        self.contents: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_nav = False
        self._in_head = False
        self._figure: str | None = None
        self.figure_imgs: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = tag
        if tag == "nav":
            self._in_nav = True
        if tag == "a" and "href" in a:
            (self.contents if self._in_nav else self.links).append(a["href"])
        if tag == "figure":
            self._figure = a.get("id")
            self.figure_imgs[self._figure] = 0
        if tag == "img":
            self.imgs.append(a)
            if self._figure:
                self.figure_imgs[self._figure] += 1
        if tag == "table":
            self._table = a["id"]
            self.tables[self._table] = {"header": [], "rows": []}
        if tag == "thead":
            self._in_head = True
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_nav = False
        if tag == "figure":
            self._figure = None
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell or []).strip())
            self._cell = None
        if tag == "tr" and self._table:
            t = self.tables[self._table]
            if self._in_head:
                t["header"] = self._row
            else:
                t["rows"].append(self._row)
            self._row = None
        if tag == "thead":
            self._in_head = False
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def check_report(out: Path) -> dict:
    """Assert that every figure and table the report names exists, is non-empty and agrees with
    metrics.json / metrics.csv; return the parsed metrics.json."""
    out = Path(out)
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    summary = json.loads((out / "metrics.json").read_text())
    # every image: a real PNG embedded, identical to the file beside the page
    assert page.imgs, "the report has no figures"
    for img in page.imgs:
        f = out / img["data-file"]
        assert f.is_file() and f.stat().st_size > 5000, f
        assert img["src"].startswith("data:image/png;base64,")
        embedded = base64.b64decode(img["src"].split(",", 1)[1])
        assert embedded[:8] == b"\x89PNG\r\n\x1a\n" and embedded == f.read_bytes()
    assert {i["data-file"] for i in page.imgs} == set(summary["figures"].values())
    # every entry of the contents list points at a non-empty figure or table
    assert page.contents
    for href in page.contents:
        target = href.lstrip("#")
        assert target in page.ids, href
        if page.ids[target] == "figure":
            assert page.figure_imgs[target] == 1
        else:
            t = page.tables[target]
            assert t["header"] and t["rows"], target
            assert all(len(r) == len(t["header"]) for r in t["rows"]), target
            assert all(any(c not in ("", "–") for c in r) for r in t["rows"]), target
    for href in page.links:
        if not href.startswith(("#", "http")):
            assert (out / href).is_file(), href
    for needed in (
        "table-ranking",
        "table-metrics",
        "table-files",
        "fig-orthoviews",
        "fig-profiles",
        "fig-spectra",
        "fig-fourier",
    ):
        assert needed in page.ids and f"#{needed}" in page.contents, needed
    # metrics.csv holds the same numbers as metrics.json
    with open(out / "metrics.csv", newline="") as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(summary["methods"])
    for name, m in summary["methods"].items():
        r = rows[name]
        assert r["status"] == m["status"]
        assert (r["rank"] or None) == (str(m["rank"]) if m["rank"] else None)
        for key, value in m["metrics"].items():
            if value is None:
                assert r[key] == ""
            else:
                assert math.isclose(float(r[key]), value, rel_tol=1e-12), (name, key)
        if m["status"] == "ok" and m["output"]:
            img = nd.read(out / m["output"])
            assert img.data.dtype == np.float32
            assert img.voxel_size_um == pytest.approx(tuple(summary["voxel_size_um"]))
    # ranking table lists the methods in ranking order
    ranked = [r[1] for r in page.tables["table-ranking"]["rows"]][
        : len(summary["ranking"]["order"])
    ]
    assert ranked == summary["ranking"]["order"]
    return summary


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small phantom through a widefield PSF with Poisson noise, written as TIFF files."""
    from neurodecon.synth import forward_model, phantom

    d = tmp_path_factory.mktemp("tiny")
    truth = phantom(["filaments", "puncta"], shape=(20, 48, 48), voxel_size_um=VS, seed=3)
    psf = nd.make_psf("widefield", shape=(15, 31, 31), voxel_size_um=VS, na=1.3, wavelength_um=0.52)
    raw = forward_model(truth, psf, photons=500, background=3, seed=4)
    for name, arr in (("raw", raw), ("truth", truth), ("psf", psf)):
        nd.write(d / f"{name}.tif", arr, voxel_size_um=VS)
    return d


def test_compare_api_report_ranks_against_truth_and_reports_failures(tiny, tmp_path):
    from neurodecon.report import compare

    calls = []
    out = tmp_path / "rep"
    s = compare(
        tiny / "raw.tif",
        psf=tiny / "psf.tif",
        truth=tiny / "truth.tif",
        methods=["wiener", "rl", "model:/no/such/net"],
        iterations=15,
        output_dir=out,
        progress=lambda d, t, m: calls.append((d, t, m)),
    )
    summary = check_report(out)
    assert s["ranking"] == summary["ranking"]
    assert "ground truth" in summary["ranking"]["criterion"]
    m = summary["methods"]
    assert m["model_net"]["status"] == "failed"
    assert "config.json" in m["model_net"]["error"]
    assert m["model_net"]["rank"] is None
    # deconvolution against the truth: RL is closer to it than the raw input
    assert m["rl"]["metrics"]["psnr"] > m["raw"]["metrics"]["psnr"]
    assert m["rl"]["rank"] < m["raw"]["rank"]
    assert m["rl"]["time_s"] > 0 and m["wiener"]["time_s"] > 0
    # the PSF used is reported with its FWHM (lateral wider than a voxel, axial wider still)
    fz, fy, fx = summary["psf"]["fwhm_um"]
    assert fz > fx > VS[2]
    assert summary["neurodecon_version"] == nd.__version__
    # every volume checked against the raw data: the truth at the noise expectation, the raw
    # input (blurred twice once blurred again) far from it, RL in between; maps drawn
    chi2 = {n: m[n]["metrics"]["consistency_chi2"] for n in ("truth", "raw", "rl")}
    assert abs(chi2["truth"] - 1) < 0.2 and chi2["raw"] > chi2["rl"] > chi2["truth"] - 0.2, chi2
    assert m["raw"]["metrics"]["consistency_missing_pct"] > 1
    assert summary["figures"]["fig-consistency"] == "figures/consistency.png"
    # progress: every step announced, monotone, ending at the total
    steps = [c[0] for c in calls]
    assert steps == sorted(steps) and steps[-1] == calls[-1][1]
    assert any("rl" in c[2] for c in calls)


def test_compare_records_the_iterations_and_background_used(tiny, tmp_path):
    """The count chosen by iterations="auto" and the estimated background come from the result."""
    from neurodecon.classical import estimate_background
    from neurodecon.report import compare

    s = compare(
        tiny / "raw.tif",
        psf=tiny / "psf.tif",
        methods=["rl", "wiener"],
        iterations="auto",
        background="auto",
        device="cpu",
        output_dir=tmp_path / "rep",
    )
    assert check_report(tmp_path / "rep")["methods"] == s["methods"]
    rl = s["methods"]["rl"]
    params = rl["parameters"]
    assert params["iterations"] == "auto"
    assert isinstance(params["iterations_used"], int) and params["iterations_used"] >= 1
    assert rl["iterations"] == params["iterations_used"] == params["auto"]["iterations"]
    raw = nd.read(tiny / "raw.tif").data
    assert params["background_used"] == pytest.approx(estimate_background(raw))
    assert params["boundary_used"] == "unknown" and params["device_used"] == "cpu"
    wiener = s["methods"]["wiener"]["parameters"]
    assert "iterations_used" not in wiener and wiener["boundary_used"] == "reflect"
    assert wiener["regularization_used"] == 1.0


def test_compare_cli_end_to_end_and_output_policy(tiny, tmp_path, run_cli):
    out = tmp_path / "cli_rep"
    args = [
        "compare",
        tiny / "raw.tif",
        "--psf",
        tiny / "psf.tif",
        "--methods",
        "wiener,rl",
        "--iterations",
        "5",
        "--truth",
        tiny / "truth.tif",
        "-o",
        out,
    ]
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    assert f"report: {out / 'report.html'}" in stdout
    assert "1/" in stderr and "rl" in stderr  # one progress line per step
    summary = check_report(out)
    assert list(summary["methods"]) == ["raw", "wiener", "rl", "truth"]
    # the folder is not silently reused
    code, _, err = run_cli(*args)
    assert code == 2 and "--overwrite" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--methods", "rl,magic"], "unknown method"),
        (["--methods", "rl,rl"], "listed twice"),
        ([], "need a PSF"),
    ],
)
def test_compare_cli_user_errors_are_one_line(tiny, tmp_path, run_cli, extra, message):
    args = ["compare", tiny / "raw.tif", "-o", tmp_path / "x", *extra]
    if "--methods" in extra:
        args += ["--psf", tiny / "psf.tif"]
    code, _, err = run_cli(*args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_model_only_needs_no_psf_fails_softly_and_overwrites(tiny, tmp_path):
    from neurodecon.report import compare

    out = tmp_path / "m"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "stale.png").write_bytes(b"old")
    with pytest.raises(nd.NeuroDeconError, match="overwrite"):
        compare(tiny / "raw.tif", methods="model:/no/such/net", output_dir=out)
    s = compare(tiny / "raw.tif", methods="model:/no/such/net", output_dir=out, overwrite=True)
    check_report(out)
    assert not (out / "figures" / "stale.png").exists()
    assert s["methods"]["model_net"]["status"] == "failed"
    assert s["ranking"]["order"] == ["raw"]
    assert "no ground truth" in s["ranking"]["criterion"]


@pytest.mark.slow
def test_compare_on_real_bars_with_ground_truth(shared_data, tmp_path, run_cli):
    """EPFL hollow bars (flowdec, 25 %): data, its PSF and the true object; no voxel size."""
    bars = shared_data / "flowdec" / "bars-25pct"
    out = tmp_path / "bars"
    code, _, err = run_cli(
        "compare",
        bars / "data.tif",
        "--psf",
        bars / "kernel.tif",
        "--truth",
        bars / "actual.tif",
        "--voxel-size",
        "1",
        "1",
        "1",
        "--methods",
        "wiener,rl",
        "--iterations",
        "20",
        "-o",
        out,
    )
    assert code == 0, err
    s = check_report(out)
    m = s["methods"]
    assert m["rl"]["metrics"]["psnr"] > m["raw"]["metrics"]["psnr"]
    assert m["rl"]["metrics"]["ssim"] > m["raw"]["metrics"]["ssim"]
    assert s["ranking"]["order"][-1] == "raw"  # both methods come closer to the truth


@pytest.mark.slow
def test_compare_on_real_widefield_nucleus_with_model_psf(shared_data, tmp_path, run_cli):
    """deconwolf's DAPI nucleus with a widefield PSF from its documented optics (no truth)."""
    out = tmp_path / "dapi"
    code, _, err = run_cli(
        "compare",
        shared_data / "deconwolf" / "dapi_001.tif",
        "--model",
        "widefield",
        "--na",
        "1.45",
        "--wavelength",
        "0.461",
        "--immersion-index",
        "1.512",
        "--voxel-size",
        "0.3",
        "0.13",
        "0.13",
        "--psf-shape",
        "31",
        "63",
        "63",
        "--methods",
        "wiener,rl",
        "--iterations",
        "10",
        "-o",
        out,
    )
    assert code == 0, err
    s = check_report(out)
    assert "no ground truth" in s["ranking"]["criterion"]
    m = s["methods"]
    raw = nd.read(shared_data / "deconwolf" / "dapi_001.tif").data.astype(np.float32)
    for name in ("wiener", "rl"):
        out_img = nd.read(out / m[name]["output"])
        assert out_img.data.shape == raw.shape
        assert out_img.voxel_size_um == pytest.approx((0.3, 0.13, 0.13))
        # the file holds the deconvolution of this very stack
        assert np.corrcoef(out_img.data.ravel(), raw.ravel())[0, 1] > 0.5
    assert nd.read(out / m["rl"]["output"]).data.min() >= 0
    assert s["psf"]["fwhm_um"][0] > s["psf"]["fwhm_um"][2] > 0.13  # widefield: axial > lateral


@pytest.mark.slow
def test_compare_runs_a_trained_model_beside_classical_methods(tiny, tmp_path):
    """model:DIR goes through neurodecon.learn (a tiny network trained for a few steps here)."""
    from neurodecon.learn import train
    from neurodecon.report import compare

    psf = nd.read(tiny / "psf.tif").data
    model_dir = train(
        {
            "voxel_size_um": VS,
            "phantoms": ("puncta", "filaments"),
            "n_phantoms": 2,
            "pool_shape": (24, 48, 48),
            "patch": (16, 32, 32),
            "batch": 1,
            "steps": 3,
            "val_every": 3,
            "val_crops": 1,
            "checkpoint_every": 3,
            "warmup_steps": 1,
            "threads": 1,
            "net": {"base_channels": 4, "depth": 2},
        },
        output_dir=tmp_path / "net",
        psf=psf,
    )
    out = tmp_path / "rep"
    s = compare(
        tiny / "raw.tif",
        psf=tiny / "psf.tif",
        truth=tiny / "truth.tif",
        methods=["rl", f"model:{model_dir}"],
        iterations=5,
        output_dir=out,
        device="cpu",
    )
    check_report(out)
    row = s["methods"]["model_net"]
    assert row["status"] == "ok", row["error"]
    assert row["parameters"]["model"] == str(model_dir)
    assert np.isfinite(row["metrics"]["psnr"]) and np.isfinite(row["metrics"]["ssim"])
    pred = nd.read(out / row["output"]).data
    assert pred.shape == nd.read(tiny / "raw.tif").data.shape and np.isfinite(pred).all()
    assert row["rank"] in (1, 2, 3)
    # the model's result is checked against its own training kernel
    assert np.isfinite(row["metrics"]["consistency_chi2"])
    # and comes with its flip spread: written beside it, drawn, the result the flips' mean
    assert (
        row["parameters"]["flip_passes"] == 4 and row["parameters"]["flip_spread_over_signal"] > 0
    )
    spread = nd.read(out / row["parameters"]["uncertainty_output"]).data
    assert spread.shape == pred.shape and spread.min() >= 0 and spread.max() > 0
    assert s["figures"]["fig-uncertainty"] == "figures/uncertainty.png"
    assert (out / "figures" / "uncertainty.png").stat().st_size > 1000
    assert "Uncertainty of the learned results" in (out / "report.html").read_text()
    assert (
        "fig-uncertainty"
        not in compare(
            tiny / "raw.tif",
            psf=tiny / "psf.tif",
            methods=["rl"],
            iterations=2,
            output_dir=tmp_path / "rl_only",
            device="cpu",
        )["figures"]
    )


@pytest.mark.slow
def test_compare_real_grid_with_psf_from_beads_of_the_same_microscope(
    shared_data, tmp_path, run_cli
):
    """MPI-CBG confocal: a line grid and a bead image from the same instrument.

    This is the only real pair.
    """
    d = shared_data / "bioimage_analysis_notebooks"
    out = tmp_path / "grid"
    code, _, err = run_cli(
        "compare",
        d / "DeconvolutionSampleVerticalGrid1AU-crop.tif",
        "--beads",
        d / "Bead_Image1_crop.tif",
        "--bead-diameter",
        "0.1",
        "--methods",
        "rl",
        "--iterations",
        "10",
        "-o",
        out,
    )
    assert code == 0, err
    s = check_report(out)
    assert s["psf"]["n_beads_used"] >= 2 and "fig-beads" in s["figures"]
    fz, fy, fx = s["psf"]["fwhm_um"]
    assert fz > fy > fx  # this objective's lateral PSF is wider in y than in x (PROVENANCE.md)
    m = s["methods"]
    # RL removes axial blur: finer decorrelation resolution in the XZ planes than the raw stack
    assert (
        m["rl"]["metrics"]["decorr_xz_resolution_um"]
        < m["raw"]["metrics"]["decorr_xz_resolution_um"]
    )
