"""Training noise calibrated on the bead stack and samples; a model that knows its limits."""

from __future__ import annotations

import contextlib
import json
import logging

import numpy as np
import pytest

from neurodecon.errors import NeuroDeconError
from neurodecon.learn import Model as _Model
from neurodecon.learn import (
    NetConfig,
    NoiseConfig,
    PhotonsAt,
    build_network,
    build_pool,
    calibrate_training_noise,
    check_levels,
    check_voxel_size,
    load_model,
    predict,
    train,
)
from neurodecon.psf import make_psf
from neurodecon.synth import forward_model, phantom

VOX = (0.15, 0.05, 0.05)
OFFSET, GAIN, READ_E = 100.0, 2.0, 2.0


@pytest.fixture(scope="module")
def psf():
    return make_psf("gaussian", shape=(11, 21, 21), voxel_size_um=VOX, fwhm_um=(0.6, 0.2, 0.2))


@pytest.fixture(scope="module")
def beads(psf):
    truth = phantom(
        "beads",
        shape=(32, 96, 96),
        voxel_size_um=VOX,
        seed=1,
        beads_diameter_um=0.1,
        beads_spacing=40,
    )
    # the beads' image peaks at about 300 photons
    photons = 300.0 * float(truth.max()) / float(forward_model(truth, psf, photons=None).max())
    return forward_model(
        truth, psf, photons=photons, read_noise=READ_E, offset=OFFSET, gain=GAIN, seed=2
    )


@pytest.fixture(scope="module")
def sample(psf):
    truth = phantom("dendrites,clusters", shape=(32, 96, 96), voxel_size_um=VOX, seed=4)
    img = forward_model(
        truth,
        psf,
        photons=200.0,
        background=10.0,
        read_noise=READ_E,
        offset=OFFSET,
        gain=GAIN,
        seed=3,
    )
    return img, float(np.percentile(forward_model(truth, psf, photons=None), 99.9)) * 200.0 / float(
        truth.max()
    )


@contextlib.contextmanager
def _warnings(caplog):
    """Capture the package's log records once each (the CLI turns propagation off)."""
    log = logging.getLogger("neurodecon")
    propagate = log.propagate
    log.propagate = False
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="neurodecon"):
            yield caplog
    finally:
        log.removeHandler(caplog.handler)
        log.propagate = propagate


def test_the_bead_stack_gives_the_camera_and_the_beads_photons(beads, caplog):
    from neurodecon.learn import BEAD_PEAK_FACTOR, MAX_PHOTON_LEVELS

    with _warnings(caplog):
        noise = calibrate_training_noise(beads=beads)
    assert noise is not None
    assert noise.gain == pytest.approx(GAIN, rel=0.1) and abs(noise.offset - OFFSET) < 1.0
    assert noise.read_noise == pytest.approx(READ_E * GAIN, rel=0.1)  # counts
    assert noise.backgrounds == (0.0,)
    peak = noise.record["calibrations"][0]["median_peak_photons"]
    assert peak == pytest.approx(300.0, rel=0.15)
    # from the read-noise floor (σ_e² = 4 photons) to twice the beads' peak, at most 5 levels
    assert noise.photons[0] == pytest.approx(READ_E**2, rel=0.2)
    assert noise.photons[-1] == pytest.approx(BEAD_PEAK_FACTOR * peak, rel=1e-3)
    assert len(noise.photons) == MAX_PHOTON_LEVELS
    steps = np.diff(np.log(noise.photons))
    assert np.allclose(steps, steps[0], rtol=1e-3)
    assert any("--sample" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    json.dumps(noise.record)  # the record is JSON


def test_samples_set_the_photon_levels_and_their_background_light(beads, sample):
    img, level = sample
    noise = calibrate_training_noise(beads=beads, samples=[img])
    assert noise is not None and abs(noise.offset - OFFSET) < 1.0  # the beads' dark level
    # the sample's 10 photons of background light above the beads' dark level
    assert noise.backgrounds[0] == 0.0 and noise.backgrounds[1] == pytest.approx(10.0, abs=1.5)
    # its brightest structures / 2 … × 2, neighbours at most a factor 2 apart
    assert noise.photons[0] == pytest.approx(level / 2, rel=0.15)
    assert noise.photons[-1] == pytest.approx(level * 2, rel=0.15)
    assert all(
        b / a <= 2.0 * (1 + 1e-4)
        for a, b in zip(noise.photons[:-1], noise.photons[1:], strict=True)
    )
    assert [c["kind"] for c in noise.record["calibrations"]] == ["beads", "sample"]


def test_a_stack_without_signal_cannot_calibrate_and_says_what_to_do():
    flat = np.random.default_rng(0).normal(100.0, 2.0, (16, 48, 48)).astype(np.float32)
    with pytest.raises(NeuroDeconError, match="--calibrate off"):
        calibrate_training_noise(beads=flat)
    assert calibrate_training_noise() is None


def test_explicit_noise_options_override_the_calibration():
    cal = {
        "photons": (50.0, 100.0),
        "backgrounds": (0.0,),
        "read_noise": 4.0,
        "gain": 2.0,
        "offset": 100.0,
    }
    auto = NoiseConfig().resolved(cal)
    assert auto.photons == (50.0, 100.0) and auto.photons_at == PhotonsAt.INPUT
    assert (auto.gain, auto.offset, auto.read_noise) == (2.0, 100.0, 4.0)
    given = NoiseConfig(photons=(300.0,), offset=0.0)
    assert given.explicit == ("photons", "offset")
    mixed = given.resolved(cal)
    assert mixed.photons == (300.0,) and mixed.photons_at == PhotonsAt.SHARP
    assert mixed.offset == 0.0 and mixed.gain == 2.0  # the rest stays calibrated
    off = NoiseConfig(calibrate="off").resolved(cal)
    assert off.photons == NoiseConfig.FALLBACK["photons"] and off.gain == 1.0
    assert NoiseConfig(photons_at="input").resolved().photons_at == PhotonsAt.INPUT
    with pytest.raises(NeuroDeconError, match="gain"):
        NoiseConfig(gain=0.0)


def test_the_pool_counts_photons_at_the_input_and_adds_the_camera():
    rng = np.random.default_rng(0)
    sharp = [np.zeros((16, 32, 32), np.float32) for _ in range(2)]
    sharp[0][8, 16, 16] = 1.0  # a point: its blurred top is far below 1
    sharp[1][:, 8:24, 8:24] = 1.0  # a block: its blurred top is 1
    sharp = [s + 0.01 * rng.random(s.shape).astype(np.float32) for s in sharp]
    k = np.ones((3, 5, 5), np.float32)
    kw = dict(read_noise=4.0, seed=0, norm_percentiles=(1.0, 99.8), gain=2.0, offset=100.0)
    pool = build_pool(sharp, k, None, photons=(50.0, 200.0), photons_at_input=True, **kw)
    assert pool.input_levels()["photons"] == pytest.approx([50.0, 200.0], rel=1e-3)
    assert pool.input_levels()["offset_counts"] == [100.0, 100.0]
    sharp_ref = build_pool(sharp, k, None, photons=(50.0, 200.0), **kw)
    assert sharp_ref.input_levels()["photons"][0] < 0.2 * 50.0  # the point's blurred top
    # the inputs carry the offset: (offset + gain · 0) / (gain · photons) in their units
    x = pool.x[1]
    noisy = pool.norms[1][0]
    assert noisy.low == pytest.approx(float(np.percentile(x, 1)) + 100.0 / (2.0 * 50.0), abs=0.1)


def test_training_from_beads_calibrates_by_default_and_records_it(beads, sample, tmp_path):
    img, _ = sample
    tiny = {
        "data": {
            "phantoms": ("dendrites",),
            "n_phantoms": 2,
            "pool_shape": (16, 32, 32),
            "patch": (8, 16, 16),
            "val_crops": 2,
        },
        "net": {"base_channels": 4, "depth": 1},
        "run": {"steps": 2, "val_every": 2, "device": "cpu", "threads": 1, "bf16": False},
    }
    kw = dict(beads=beads, bead_diameter_um=0.1, beads_voxel_size_um=VOX)
    out = train(tiny, output_dir=tmp_path / "auto", samples=[img], **kw)
    cfg = json.loads((out / "config.json").read_text())
    noise = cfg["training"]["noise"]
    assert noise["photons_at"] == "input" and noise["gain"] == pytest.approx(GAIN, rel=0.1)
    assert noise["offset"] == pytest.approx(OFFSET, abs=1.0)
    assert [c["kind"] for c in cfg["noise"]["calibration"]["calibrations"]] == ["beads", "sample"]
    assert cfg["noise"]["input_levels"]["photons"] == pytest.approx(
        [noise["photons"][0], noise["photons"][-1]], rel=1e-3
    )
    trained = cfg["trained_for"]
    assert trained["voxel_size_um"] == list(VOX) and trained["structures"]["phantoms"] == [
        "dendrites"
    ]
    assert trained["optics"]["from"] == "bead extraction"
    # explicit photons win (counted on the sharp volumes); the camera stays calibrated
    out = train(tiny, output_dir=tmp_path / "given", photons=(500.0,), **kw)
    cfg = json.loads((out / "config.json").read_text())
    noise = cfg["training"]["noise"]
    assert noise["photons"] == [500.0] and noise["photons_at"] == "sharp"
    assert noise["gain"] == pytest.approx(GAIN, rel=0.1) and cfg["noise"]["explicit"] == ["photons"]
    # and with the calibration off, nothing is measured
    out = train(tiny, output_dir=tmp_path / "off", calibrate="off", **kw)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["noise"]["calibration"] is None and cfg["training"]["noise"]["gain"] == 1.0


# ---- a model that knows its limits ---------------------------------------------------------


def _model(levels=None) -> _Model:
    net = build_network(NetConfig(base_channels=4, depth=1)).eval()
    config = {
        "voxel_size_um": list(VOX),
        "network": net.cfg.to_dict(),
        "normalization": {"percentiles": [1.0, 99.8]},
        "inference": {"halo": 4},
        "noise": {
            "gain_counts_per_e": GAIN,
            "read_noise_counts": READ_E * GAIN,
            "background_counts": [0.0],
            **({"input_levels": levels} if levels else {}),
        },
    }
    return _Model(net, config)


def test_predict_warns_once_when_the_levels_are_outside_the_training(sample, caplog):
    img, level = sample
    model = _model({"offset_counts": [100.0, 120.0], "photons": [level / 2, level * 2]})
    assert check_levels(model, img) is None  # its own kind of data
    with _warnings(caplog):
        out = predict(model, img, voxel_size_um=VOX, tile_shape=(16, 32, 32), device="cpu")
    assert out.shape == img.shape
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # the offset removed: the dark level names its value and the trained range
    msg = check_levels(model, img - 100.0)
    assert msg and "dark level" in msg and "trained 100–120" in msg and "photons" not in msg
    # ten times the counts above the dark level (120: 10 photons of light) is a gain of 20:
    # the input's own gain gives the same photons, nothing to warn
    assert check_levels(model, (img - 120.0) * 10.0 + 120.0) is None
    dim = _model({"offset_counts": [100.0, 120.0], "photons": [level * 8, level * 16]})
    msg = check_levels(dim, img)
    assert msg and "brightest structures" in msg and "dark level" not in msg
    caplog.clear()
    with _warnings(caplog):
        predict(dim, img, voxel_size_um=VOX, tile_shape=(16, 32, 32), device="cpu")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "\n" not in warned[0] and "brightest structures" in warned[0]


def test_models_recording_only_backgrounds_check_the_dark_level(sample):
    img, _ = sample
    legacy = _model()  # as config.json of earlier versions: backgrounds, no input levels
    legacy.config["noise"] = {"background_counts": [0.0, 2.0, 5.0, 10.0], "read_noise_counts": 1}
    msg = check_levels(legacy, img)
    assert msg and "dark level" in msg and "trained 0–10" in msg
    assert check_levels(legacy, img - 100.0) is None


def test_predict_warns_when_the_voxel_size_differs_by_more_than_10_percent(caplog):
    model = _model()
    assert check_voxel_size(model, (0.16, 0.052, 0.048)) is None  # within 10 %
    msg = check_voxel_size(model, (0.2, 0.05, 0.05))
    assert msg and "(0.2, 0.05, 0.05)" in msg and "(0.15, 0.05, 0.05)" in msg
    vol = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    caplog.clear()
    with _warnings(caplog):
        predict(model, vol, voxel_size_um=(0.15, 0.05, 0.05), device="cpu")
        assert not [r for r in caplog.records if r.levelname == "WARNING"]
        predict(model, vol, voxel_size_um=(0.3, 0.05, 0.05), device="cpu", check=False)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "voxel size (0.3, 0.05, 0.05) µm" in warned[0]


def test_a_trained_model_directory_loads_with_its_limits(tmp_path):
    # load_model keeps the new entries; trained_levels reads them back
    from neurodecon.learn import save_model, trained_levels

    model = _model({"offset_counts": [100.0, 100.0], "photons": [10.0, 40.0]})
    model.config["format"] = "neurodecon-model"
    save_model(tmp_path, model.net, model.config)
    back = load_model(tmp_path)
    assert trained_levels(back.config)["photons"] == [10.0, 40.0]


# ---- command line ---------------------------------------------------------------------------


def test_cli_train_calibrates_on_beads_and_samples_and_deconvolve_warns(
    beads, sample, tmp_path, run_cli
):
    from neurodecon.io import write

    write(tmp_path / "beads.tif", beads, voxel_size_um=VOX)
    write(tmp_path / "sample.tif", sample[0], voxel_size_um=VOX)
    tiny = ["--phantoms", "clusters", "--n-phantoms", "2", "--pool-shape", "16", "32", "32"]
    tiny += ["--patch", "8", "16", "16", "--steps", "2", "--val-every", "2"]
    tiny += ["--base-channels", "4", "--net-depth", "1", "--threads", "1", "--device", "cpu"]
    code, _, err = run_cli(
        "train",
        "--beads",
        tmp_path / "beads.tif",
        "--bead-diameter",
        "0.1",
        "--sample",
        tmp_path / "sample.tif",
        "--read-noise",
        "3",
        *tiny,
        "-o",
        tmp_path / "m",
    )
    assert code == 0, err
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    sources = [c["source"] for c in cfg["noise"]["calibration"]["calibrations"]]
    assert sources == [str(tmp_path / "beads.tif"), str(tmp_path / "sample.tif")]
    assert cfg["training"]["noise"]["read_noise"] == 3.0 and cfg["noise"]["explicit"] == [
        "read_noise"
    ]
    assert "training noise from the calibration" in err
    # the offset-free copy of the sample is outside the trained dark levels: one warning line
    write(tmp_path / "flat.tif", sample[0] - 100.0, voxel_size_um=VOX)
    code, _, err = run_cli(
        "deconvolve", tmp_path / "flat.tif", "--model", tmp_path / "m", "-o", tmp_path / "o.tif"
    )
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "dark level" in lines[0] and "trained" in lines[0]


def test_cli_simulate_takes_a_camera_gain(tmp_path, run_cli):
    from neurodecon.io import read

    args = ["simulate", "--phantom", "puncta", "--shape", "8", "32", "32"]
    args += ["--voxel-size", "0.2", "0.1", "0.1", "--model", "gaussian", "--fwhm", "0.6", "0.3"]
    args += ["0.3", "--photons", "100", "--offset", "100"]
    code, _, err = run_cli(*args, "--gain", "3", "-o", tmp_path / "g3")
    assert code == 0, err
    code, _, err = run_cli(*args, "-o", tmp_path / "g1")
    assert code == 0, err
    a, b = (read(tmp_path / d / "image.tif").data for d in ("g3", "g1"))
    np.testing.assert_allclose(a - 100.0, 3.0 * (b - 100.0), rtol=1e-5, atol=1e-3)
    sim = json.loads((tmp_path / "g3" / "simulation.json").read_text())
    assert sim["gain"] == 3.0
