"""bioimage.io packages: export passes the official test offline, re-import is exact, packages
made elsewhere run through bioimageio.core (issue "Model sharing: export and import ...")."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import TINY_TRAIN, gaussian_kernel

pytest.importorskip("bioimageio.core", reason="the bioimageio extra is not installed")
pytest.importorskip("bioimageio.spec", reason="the bioimageio extra is not installed")

import yaml  # noqa: E402  (bioimageio.spec depends on it)

from neurodecon.errors import NeuroDeconError  # noqa: E402
from neurodecon.learn import (  # noqa: E402
    bioimageio_test_input,
    export_bioimageio,
    is_foreign_package,
    load_model,
    predict,
    train,
)

VS = (0.1, 0.05, 0.05)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODECON_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def default_zip(tmp_path_factory):
    return export_bioimageio(None, tmp_path_factory.mktemp("bmz") / "default.zip", device="cpu")


@contextlib.contextmanager
def _unclosed_files_collected():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


def _rdf(package: Path) -> dict:
    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def test_default_model_passes_bioimageio_test_offline(default_zip, tmp_path):
    """The official test (format validation, test tensors reproduced, several input sizes and
    batch sizes) passes with every source local and no network (proxy variables point nowhere)."""
    exe = Path(sys.executable).with_name("bioimageio")
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    summary = tmp_path / "summary.json"
    run = subprocess.run(
        [str(exe), "test", str(default_zip), "--summary", str(summary)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(summary.read_text())
    assert result["status"] == "passed"
    names = [d["name"] for d in result["details"]]
    assert any("Reproduce test outputs" in n for n in names)
    assert any("batch_size: 2" in n for n in names)


def test_package_carries_voxel_size_provenance_and_citation(default_zip):
    rdf = _rdf(default_zip)
    model = load_model(None)
    axes = {a["id"]: a for a in rdf["inputs"][0]["axes"] if a["type"] == "space"}
    assert [axes[k]["scale"] for k in "zyx"] == pytest.approx(list(model.voxel_size_um))
    assert {axes[k]["unit"] for k in "zyx"} == {"micrometer"}
    out_axes = {a["id"]: a for a in rdf["outputs"][0]["axes"] if a["type"] == "space"}
    assert [out_axes[k]["scale"] for k in "zyx"] == pytest.approx(list(model.voxel_size_um))
    nd = rdf["config"]["neurodecon"]
    assert nd["trained_for"]["optics"]["na"] == model.config["trained_for"]["optics"]["na"]
    assert nd["noise"]["input_levels"] == model.config["noise"]["input_levels"]
    assert nd["physics"]["iterations"] == model.physics["iterations"]
    assert rdf["cite"][0]["doi"] == "10.3390/ijms26188770"
    with zipfile.ZipFile(default_zip) as zf:
        names = set(zf.namelist())
        readme = zf.read("README.md").decode()
        cover = zf.read("cover.png")
    assert {"neurodecon_config.json", "neurodecon_weights.pt", "weights.pt"} <= names
    assert "## Validation" in readme and "10.3390/ijms26188770" in readme
    import io

    from PIL import Image

    w, h = Image.open(io.BytesIO(cover)).size
    assert w == 2 * h


def test_reimported_package_predicts_like_the_original(default_zip, tmp_path):
    original = load_model(None)
    again = load_model(default_zip)
    assert again.config == original.config
    np.testing.assert_array_equal(again.physics_psf, original.physics_psf)
    x = bioimageio_test_input(original, seed=5)[:, :40, :36]  # not a multiple of the network's
    a = predict(original, x, device="cpu", check=False)
    b = predict(again, x, device="cpu", check=False)
    assert np.abs(a - b).max() <= 1e-4 * float(np.abs(a).max())
    assert load_model(default_zip).path == again.path  # unpacked once, then cached


def test_bioimageio_core_prediction_equals_ours(default_zip):
    """What a bioimage.io consumer gets (bioimageio.core, our network class inside) equals
    ``predict`` within 1e-4 on an input of another size than the test tensor."""
    from bioimageio.core import load_model_description
    from bioimageio.core import predict as bmz_predict

    model = load_model(None)
    x = bioimageio_test_input(model, seed=7)[:24, :48, :40]
    ours = predict(model, x, device="cpu", check=False)
    with _unclosed_files_collected():  # bioimageio.spec leaves package files open
        descr = load_model_description(default_zip)
        sample = bmz_predict(model=descr, inputs={"raw": x[None, None]})
        del descr
    theirs = np.asarray(sample.members["deconvolved"].data)[0, 0]
    assert np.abs(ours - theirs).max() <= 1e-4 * float(np.abs(ours).max())


def test_freshly_trained_model_without_physics_exports(tmp_path):
    """A model trained here (no physics channel, so no RL_K buffer) exports and re-imports; a
    user's sample becomes the test tensor (its centre, at most 32×64×64)."""
    tiny = {**TINY_TRAIN, "net": {"base_channels": 4, "depth": 1}, "physics": "none",
            "steps": 2, "val_every": 2, "voxel_size_um": VS}  # fmt: skip
    out = train(tiny, output_dir=tmp_path / "m", psf=gaussian_kernel())
    rng = np.random.default_rng(0)
    sample = rng.poisson(20.0, (40, 80, 70)).astype(np.float32)
    package = export_bioimageio(out, tmp_path / "tiny.zip", sample=sample, device="cpu")
    with zipfile.ZipFile(package) as zf:
        test_in = np.load(zf.open("test_input.npy"))
        test_out = np.load(zf.open("test_output.npy"))
    assert test_in.shape == (1, 1, 32, 64, 64)
    np.testing.assert_array_equal(test_in[0, 0], sample[4:36, 8:72, 3:67])
    again = load_model(package)
    assert again.physics_psf is None
    np.testing.assert_allclose(
        predict(again, test_in[0, 0], device="cpu", check=False), test_out[0, 0], atol=1e-4
    )


def test_export_refuses_bad_requests_in_one_line(tmp_path, run_cli):
    code, _, err = run_cli("export", "-o", tmp_path / "m.tif")
    assert code == 2 and "is a .zip file" in err and err.count("\n") == 1
    code, _, err = run_cli("export", "-o", tmp_path / "m.zip", "--license", "NOT-A-LICENCE")
    assert code == 2 and "'NOT-A-LICENCE' is not an SPDX licence id" in err
    assert err.strip().count("\n") == 0 or "error:" in err.splitlines()[-1]
    assert not (tmp_path / "m.zip").exists() and not list(tmp_path.glob("*.partial"))
    code, _, err = run_cli("export", tmp_path, "-o", tmp_path / "n.zip")
    assert code == 2 and "not a NeuroDecon model directory" in err


def test_cli_export_then_deconvolve_with_the_package(tmp_path, run_cli):
    package = tmp_path / "model.zip"
    code, out, err = run_cli("export", "-o", package, "--author", "A. Tester", "-q")
    assert code == 0, err
    assert "bioimageio test" in out and package.is_file()
    assert _rdf(package)["authors"][0]["name"] == "A. Tester"
    code, _, err = run_cli("export", "-o", package)
    assert code == 2 and "already exists" in err
    model = load_model(None)
    x = bioimageio_test_input(model, seed=2)
    tifffile.imwrite(tmp_path / "in.tif", x, imagej=True, resolution=(20.0, 20.0),
                     metadata={"spacing": 0.1, "unit": "um", "axes": "ZYX"})  # fmt: skip
    code, _, err = run_cli(
        "deconvolve", tmp_path / "in.tif", "--model", package, "-o", tmp_path / "out.tif", "-q"
    )
    assert code == 0, err
    expected = predict(model, x, device="cpu", check=False)
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), expected, atol=1e-3)


# --- packages made elsewhere ---------------------------------------------------------------

_TINY_SOURCE = """import torch


class Doubler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(x)
"""


def _foreign_package(folder: Path, axes: str = "bczyx") -> Path:
    """A 3D package written with bioimageio.spec alone: (0.5·x + 1) preprocessing, a 3×3×3
    convolution whose only weight is 2 at the centre: output = x + 2."""
    import bioimageio.spec.model.v0_5 as v
    import torch
    from bioimageio.spec import save_bioimageio_package

    (folder / "doubler.py").write_text(_TINY_SOURCE)
    (folder / "doc.md").write_text("# Doubler\n\nA test model.\n")
    weight = torch.zeros(1, 1, 3, 3, 3)
    weight[0, 0, 1, 1, 1] = 2.0
    torch.save({"conv.weight": weight}, folder / "w.pt")
    x = np.random.default_rng(0).random((1, 1, 16, 16, 16), dtype=np.float32) * 100
    np.save(folder / "in.npy", x)
    np.save(folder / "out.npy", (x + 2).astype(np.float32))

    def axis(kind, a, size):
        if a == "b":
            return v.BatchAxis()
        if a == "c":
            return v.ChannelAxis(channel_names=[v.Identifier("c")])
        return kind(id=v.AxisId(a), size=size(a), scale=0.2 if a == "z" else 0.1, unit="micrometer")

    ref = v.TensorId("input")
    descr = v.ModelDescr(
        name="doubler",
        description="a test model made without NeuroDecon",
        authors=[v.Author(name="someone else")],
        cite=[v.CiteEntry(text="none", url="https://example.com")],
        license="MIT",
        documentation=v.FileDescr(source=folder / "doc.md"),
        inputs=[
            v.InputTensorDescr(
                id=ref,
                axes=[
                    axis(v.SpaceInputAxis, a, lambda _: v.ParameterizedSize(min=8, step=8))
                    for a in axes
                ],  # fmt: skip
                test_tensor=v.FileDescr(source=folder / "in.npy"),
                preprocessing=[v.ScaleLinearDescr(kwargs=v.ScaleLinearKwargs(gain=0.5, offset=1))],
            )
        ],
        outputs=[
            v.OutputTensorDescr(
                id=v.TensorId("output"),
                axes=[
                    axis(
                        v.SpaceOutputAxis,
                        a,
                        lambda a: v.SizeReference(tensor_id=ref, axis_id=v.AxisId(a)),
                    )
                    for a in axes
                ],  # fmt: skip
                test_tensor=v.FileDescr(source=folder / "out.npy"),
            )
        ],
        weights=v.WeightsDescr(
            pytorch_state_dict=v.PytorchStateDictWeightsDescr(
                source=folder / "w.pt",
                architecture=v.ArchitectureFromFileDescr(
                    source=folder / "doubler.py", callable=v.Identifier("Doubler")
                ),
                pytorch_version=v.Version("2.2"),
            )
        ),
    )
    return save_bioimageio_package(descr, output_path=folder / "doubler.zip")


@pytest.fixture(scope="module")
def foreign_zip(tmp_path_factory):
    with _unclosed_files_collected():
        return _foreign_package(tmp_path_factory.mktemp("foreign"))


def test_package_made_elsewhere_runs_with_its_own_processing(foreign_zip, messages):
    assert is_foreign_package(foreign_zip) and not is_foreign_package("default")
    x = np.random.default_rng(1).random((2, 20, 24, 30), dtype=np.float32) * 50
    y = predict(foreign_zip, x, voxel_size_um=(0.2, 0.1, 0.1), device="cpu")
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x + 2, atol=1e-4)
    assert not any("differs from the model" in m for m in messages)
    predict(foreign_zip, x[0], voxel_size_um=(0.4, 0.1, 0.1), device="cpu")
    assert any("differs from the model" in m for m in messages)
    with pytest.raises(NeuroDeconError, match="not made by NeuroDecon"):
        load_model(foreign_zip)


def test_cli_deconvolve_with_a_package_made_elsewhere(foreign_zip, tmp_path, run_cli):
    x = np.random.default_rng(2).random((12, 20, 20), dtype=np.float32) * 50
    tifffile.imwrite(tmp_path / "in.tif", x)
    code, out, err = run_cli(
        "deconvolve", tmp_path / "in.tif", "--model", foreign_zip, "-o", tmp_path / "o.tif"
    )
    assert code == 0, err
    np.testing.assert_allclose(tifffile.imread(tmp_path / "o.tif"), x + 2, atol=1e-4)
    code, _, err = run_cli(
        "deconvolve", tmp_path / "in.tif", "--model", foreign_zip, "-o", tmp_path / "p.tif",
        "--check",
    )  # fmt: skip
    assert code == 2 and "need a NeuroDecon model" in err
    assert not (tmp_path / "p.tif").exists()


def test_not_a_package_is_one_line(tmp_path):
    bad = tmp_path / "x.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(NeuroDeconError, match="not a bioimage.io model package"):
        load_model(bad)
    (tmp_path / "y.zip").write_bytes(b"not a zip")
    with pytest.raises(NeuroDeconError, match="not a readable zip"):
        load_model(tmp_path / "y.zip")


def test_importing_neurodecon_does_not_import_bioimageio():
    code = "import sys, neurodecon, neurodecon.learn, neurodecon.cli; "
    code += "print('bioimageio' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_compare_runs_both_kinds_of_package(foreign_zip, default_zip, tmp_path, run_cli):
    """``compare --methods …,model:PKG.zip``: ours with its kernel's consistency check, one made
    elsewhere with the data's PSF for the check."""
    rng = np.random.default_rng(3)
    x = rng.poisson(20.0, (12, 32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tif", x)
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_kernel())
    code, out, err = run_cli(
        "compare", tmp_path / "in.tif", "--psf", tmp_path / "psf.tif", "--iterations", "3",
        "--methods", f"rl,model:{default_zip},model:{foreign_zip}", "-o", tmp_path / "rep", "-q",
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "rep" / "metrics.json").read_text())["methods"]
    assert {r["status"] for r in rows.values()} == {"ok"}, rows
    foreign = next(r for name, r in rows.items() if "doubler" in name)
    assert foreign["parameters"]["runner"] == "bioimageio.core"
    assert foreign["label"].startswith("bioimage.io model")
    assert foreign["metrics"]["consistency_chi2"] > 0  # checked against the data's PSF


@pytest.mark.parametrize("arch", ["rln", "rcan"])
def test_other_architectures_export_the_same_way(arch, tmp_path):
    """Models of the seed networks (``train --arch``) go through the same exporter: the package
    rebuilds them from the config (``build_network``) and predicts like ``predict``."""
    from bioimageio.core import load_model_description
    from bioimageio.core import predict as bmz_predict

    small = {"rln": {}, "rcan": {"channels": 4, "groups": 1, "blocks": 1, "reduction": 2}}
    cfg = {**TINY_TRAIN, "steps": 2, "val_every": 2, "voxel_size_um": VS, "arch": arch,
           "arch_options": small[arch]}  # fmt: skip
    out = train(cfg, output_dir=tmp_path / "m", psf=gaussian_kernel())
    package = export_bioimageio(out, tmp_path / f"{arch}.zip", device="cpu")
    assert _rdf(package)["config"]["neurodecon"]["n_parameters"] > 0
    model = load_model(out)
    x = bioimageio_test_input(model, seed=1)[:16, :40, :40]
    ours = predict(model, x, device="cpu", check=False)
    with _unclosed_files_collected():
        descr = load_model_description(package)
        sample = bmz_predict(model=descr, inputs={"raw": x[None, None]})
        del descr
    theirs = np.asarray(sample.members["deconvolved"].data)[0, 0]
    assert np.abs(ours - theirs).max() <= 1e-4 * float(np.abs(ours).max())
    np.testing.assert_allclose(predict(load_model(package), x, device="cpu", check=False), ours)
