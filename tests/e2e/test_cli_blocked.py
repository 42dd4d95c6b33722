"""``neurodecon deconvolve IN -o OUT.ome.zarr`` in blocks: options, auto-switch, kill+resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import gaussian_kernel

import neurodecon as nd
from neurodecon.blocked import deconvolve_blocked, incomplete_path

VS = (0.2, 0.1, 0.1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blocked")
    rng = np.random.default_rng(1)
    truth = np.zeros((32, 96, 96), np.float32)
    truth[tuple(rng.integers(0, n, 400) for n in truth.shape)] = rng.uniform(50, 300, 400)
    from neurodecon.synth import convolve

    psf = gaussian_kernel((1.2, 1.0, 1.0), (5, 5, 5))
    img = rng.poisson(convolve(truth, psf) + 5.0).astype(np.float32)
    nd.write(folder / "in.ome.zarr", nd.io.Image(img, axes="ZYX", voxel_size_um=VS))
    tifffile.imwrite(folder / "psf.tif", psf, imagej=True, resolution=(10.0, 10.0),
                     metadata={"spacing": 0.2, "unit": "um", "axes": "ZYX"})  # fmt: skip
    return folder, img, psf


def _args(folder: Path, out: Path, *extra: str) -> list[str]:
    return ["deconvolve", str(folder / "in.ome.zarr"), "--psf", str(folder / "psf.tif"),
            "--iterations", "10", "--background", "5", "-o", str(out), *extra]  # fmt: skip


def test_cli_blocked_run_equals_the_api(stack, tmp_path, run_cli):
    folder, img, psf = stack
    code, out, err = run_cli(*_args(folder, tmp_path / "o.ome.zarr", "--block", "16", "48", "48"))
    assert code == 0, err
    assert "8 blocks of 16×48×48" in out
    ref = deconvolve_blocked(img, tmp_path / "r.ome.zarr", psf, "rl", iterations=10,
                             background=5.0, block=(16, 48, 48))  # fmt: skip
    res = nd.read(tmp_path / "o.ome.zarr")
    np.testing.assert_allclose(res.data, nd.read(ref.output).data, rtol=1e-6, atol=1e-6)
    assert res.voxel_size_um == pytest.approx(VS)
    assert "--block 16 48 48" in res.metadata["provenance"]["command"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A physics-aware network (RL_K by rl-accel, the default) trained for 2 steps."""
    from conftest import TINY_TRAIN

    from neurodecon.learn import train

    cfg = {**TINY_TRAIN, "net": {"base_channels": 4, "depth": 1}, "steps": 2, "val_every": 2,
           "seed": 3, "physics": "rl", "physics_iterations": 5, "physics_draws": 1,
           "voxel_size_um": VS}  # fmt: skip
    out = tmp_path_factory.mktemp("model") / "tiny"
    return train(cfg, output_dir=out, psf=gaussian_kernel((1.2, 1.0, 1.0), (5, 5, 5)))


def test_cli_model_in_blocks_equals_the_whole_volume_run(stack, tiny_model, tmp_path, run_cli):
    """``--model DIR --block``: the same voxels as the CLI's whole-volume prediction (within
    1e-4 of the range), read back with the voxel size; the decisions recorded."""
    folder = stack[0]
    src = str(folder / "in.ome.zarr")
    code, out, err = run_cli("deconvolve", src, "--model", tiny_model, "-o", tmp_path / "w.tif")
    assert code == 0, err
    code, out, err = run_cli("deconvolve", src, "--model", tiny_model, "-o",
                             tmp_path / "b.ome.zarr", "--block", "16", "48", "48")  # fmt: skip
    assert code == 0, err
    assert "network" in out and "8 blocks of 16×48×48" in out
    whole, res = nd.read(tmp_path / "w.tif"), nd.read(tmp_path / "b.ome.zarr")
    assert res.voxel_size_um == pytest.approx(VS)
    span = float(whole.data.max() - whole.data.min())
    assert float(np.abs(res.data - whole.data).max()) < 1e-4 * span
    run = res.metadata["provenance"]["run"]
    assert run["physics"]["method"] == "rl-accel" and len(run["frames"]) == 1
    assert run["global_decisions"] == "whole volume"


def test_a_network_runs_in_blocks_when_the_volume_does_not_fit(
    stack, tiny_model, tmp_path, run_cli, monkeypatch
):
    """The switch asks ``whole_volume_fits`` with the model (its estimate: ``predict``'s
    channels, RL_K and one tile); here it answers no."""
    import neurodecon.blocked

    asked = []

    def fits(path, method, *, voxel_size_um=None, model=None):
        asked.append(model)
        return False

    monkeypatch.setattr(neurodecon.blocked, "whole_volume_fits", fits)
    src = str(stack[0] / "in.ome.zarr")
    code, out, err = run_cli(
        "deconvolve", src, "--model", tiny_model, "-o", tmp_path / "a.ome.zarr"
    )
    assert code == 0, err
    assert "network" in out and "blocks of" in out and (tmp_path / "a.ome.zarr").is_dir()
    assert asked == [str(tiny_model)]


def test_blocked_is_chosen_when_the_volume_does_not_fit(stack, tmp_path, run_cli, monkeypatch):
    import neurodecon.memory

    folder, _, _ = stack
    monkeypatch.setattr(neurodecon.memory, "available_bytes", lambda: 40 << 20)
    code, out, err = run_cli(*_args(folder, tmp_path / "auto.ome.zarr"))
    assert code == 0, err
    assert "blocks of" in out and (tmp_path / "auto.ome.zarr").is_dir()


def test_block_options_need_an_ome_zarr_output(stack, tmp_path, run_cli):
    folder, _, _ = stack
    code, _, err = run_cli(*_args(folder, tmp_path / "o.tif", "--workers", "2"))
    assert code == 2 and "OME-Zarr" in err and err.count("\n") == 1
    code, _, err = run_cli(
        *_args(folder, tmp_path / "o.ome.zarr", "--block", "16", "48", "48", "--check")
    )
    assert code == 2 and "not available for blocked runs" in err


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(stack, tmp_path):
    """SIGKILL mid-way (no cleanup at all), then --resume: the same voxels as a run never
    interrupted, and finished blocks are not recomputed."""
    folder, img, psf = stack
    out = tmp_path / "k.ome.zarr"
    exe = [sys.executable, "-m", "neurodecon", "-q"]
    args = _args(folder, out, "--block", "8", "24", "24", "--device", "cpu")
    args[args.index("10")] = "40"  # more iterations: a run long enough to be killed
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*exe, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    done_dir = incomplete_path(out) / ".neurodecon_done"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if done_dir.is_dir() and len(list(done_dir.iterdir())) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and incomplete_path(out).is_dir()
    finished = len(list(done_dir.iterdir()))
    run = subprocess.run([*exe, *args, "--resume"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"{finished} resumed" in run.stdout
    ref = deconvolve_blocked(img, tmp_path / "ref.ome.zarr", psf, "rl", iterations=40,
                             background=5.0, block=(8, 24, 24), device="cpu")  # fmt: skip
    np.testing.assert_allclose(nd.read(out).data, nd.read(ref.output).data, rtol=1e-5, atol=1e-5)


def test_convert_streams_tiff_to_ome_zarr(tmp_path, run_cli):
    """TIFF → OME-Zarr chunk by chunk (``open_lazy`` + ``write_lazy``): same voxels, voxel
    size and pixel type kept, a pyramid added."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 4000, (20, 160, 150)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", data, imagej=True, resolution=(10.0, 10.0),
                     metadata={"spacing": 0.2, "unit": "um", "axes": "ZYX"})  # fmt: skip
    code, out, err = run_cli("convert", tmp_path / "in.tif", tmp_path / "o.ome.zarr")
    assert code == 0, err
    assert "(streamed)" in out
    back = nd.read(tmp_path / "o.ome.zarr")
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == np.uint16 and back.voxel_size_um == pytest.approx(VS)
    assert back.metadata["provenance"]["parameters"]["streamed"] is True
    assert (tmp_path / "o.ome.zarr" / "1").is_dir()  # 160×150 → an 80×75 level
