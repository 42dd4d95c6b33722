"""Property-based robustness of the command line, and its faults (issue: every input works or
gets one clear line).

The invariant for any input: exit 0 with a finite, non-constant, readable output of the right
shape and voxel size, or exit 2 (3 for memory) with exactly one ``error:`` line. Never a
traceback, never a silent all-zero output, never a leftover temporary file. Faults: a full disk
(a small tmpfs where the test may mount one, else an injected ``OSError``), a read-only or
forbidden folder, out of memory, Ctrl-C (SIGINT), SIGTERM and ``kill -9``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodecon as nd
from neurodecon.classical import METHODS

CLI = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def one_error_line(code: int, err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "error:" not in err.replace(lines[0], ""), err
    assert lines[0].endswith("."), lines[0]
    return lines[0]


def no_partials(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".partial" in p.name]
    assert not left, left


# ---- deconvolve: random images, voxel sizes, PSFs and options ----------------------------------

KINDS = ["noise", "noise", "ramp", "spike", "constant", "negative", "tiny", "huge", "nan"]
VOXELS = [(0.3, 0.1, 0.1), (0.3, 0.1, 0.1), (300.0, 100.0, 100.0), (3e-4, 1e-4, 1e-4), None]
PSF_VOXEL_FACTORS = [None, 1.0, 1.0, 2.0, 1000.0, 1e-3, 1e-5]


def _values(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    base = 100 + 80 * rng.random(shape)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    blob = 500 * np.exp(-((z - shape[0] / 2) ** 2 + (y - shape[1] / 2) ** 2) / 4)
    table = {
        "noise": base + blob,
        "ramp": 1.0 + z + 2 * y + 3 * x,
        "spike": np.where((z == 0) & (y == 0) & (x == 0), 1000.0, 0.0),
        "constant": np.full(shape, 7.0),
        "negative": -base,
        "tiny": (base + blob) * 1e-30,
        "huge": (base + blob) * 1e30,
    }
    if kind == "nan":
        out = base.copy()
        out.flat[0] = np.nan
        return out
    return table[kind]


@st.composite
def cli_cases(draw):
    return {
        "shape": (draw(st.integers(1, 6)), draw(st.integers(1, 12)), draw(st.integers(1, 12))),
        "kind": draw(st.sampled_from(KINDS)),
        "dtype": draw(st.sampled_from(["float32", "uint16", "float64"])),
        "fmt": draw(st.sampled_from([".tif", ".ome.tif", ".npy", ".ome.zarr"])),
        "voxel": draw(st.sampled_from(VOXELS)),
        "psf": draw(st.sampled_from(["gaussian", "widefield", "file", "file"])),
        "psf_shape": tuple(draw(st.integers(1, 9)) for _ in range(3)),
        "psf_offset": tuple(draw(st.integers(-2, 2)) for _ in range(3)),
        "psf_voxel": draw(st.sampled_from(PSF_VOXEL_FACTORS)),
        "method": draw(st.sampled_from(METHODS)),
        "iterations": draw(st.sampled_from(["1", "3"])),
        "background": draw(st.sampled_from(["0", "0", "auto", "120", "1e9"])),
        "seed": draw(st.integers(0, 2)),
    }


def _write_input(folder: Path, case: dict) -> Path:
    rng = np.random.default_rng(case["seed"])
    with np.errstate(all="ignore"):
        data = _values(case["kind"], case["shape"], rng)
        if case["dtype"] == "uint16":
            data = np.clip(np.nan_to_num(data), 0, 65535)
        data = data.astype(case["dtype"])
    path = folder / f"in{case['fmt']}"
    if case["fmt"] == ".npy":
        np.save(path, data)
    elif case["voxel"] is None and case["fmt"] == ".tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        nd.write(path, data, dtype="keep", voxel_size_um=case["voxel"] or (1.0, 1.0, 1.0))
    return path


def _psf_args(folder: Path, case: dict) -> list[str]:
    if case["psf"] == "gaussian":
        return ["--model", "gaussian", "--fwhm", "0.8", "0.25", "0.25"]
    if case["psf"] == "widefield":
        return ["--model", "widefield", "--na", "1.2", "--wavelength", "0.5"]
    shape, off = case["psf_shape"], case["psf_offset"]
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    psf = np.exp(-sum((g - o) ** 2 / 2.0 for g, o in zip(grids, off, strict=True)))
    path = folder / "psf.tif"
    tifffile.imwrite(path, psf.astype(np.float32), photometric="minisblack")
    args = ["--psf", str(path)]
    if case["psf_voxel"] is not None:
        base = case["voxel"] or (1.0, 1.0, 1.0)
        args += ["--psf-voxel-size", *(f"{v * case['psf_voxel']:g}" for v in base)]
    return args


@settings(CLI, max_examples=200)
@given(case=cli_cases())
def test_deconvolve_cli_result_or_one_line(run_cli, case):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = _write_input(folder, case)
        out = folder / "out.ome.tif"
        args = ["deconvolve", str(src), *_psf_args(folder, case), "-o", str(out)]
        args += ["--method", case["method"], "--iterations", case["iterations"]]
        args += ["--background", case["background"], "--device", "cpu"]
        if case["voxel"] is None and case["fmt"] != ".tif":
            args += ["--voxel-size", "0.3", "0.1", "0.1"]
        code, _, err = run_cli(*args)
        no_partials(folder)
        if code != 0:
            assert code in (2, 3), (code, err)
            one_error_line(code, err)
            assert not out.exists()
            return
        assert "Traceback" not in err and "error:" not in err
        given = nd.read(src, voxel_size_um=(0.3, 0.1, 0.1) if "--voxel-size" in args else None)
        result = nd.read(out)
        assert result.shape == given.shape
        np.testing.assert_allclose(result.voxel_size_um, given.voxel_size_um, rtol=1e-6)
        assert np.isfinite(result.data).all()
        assert result.data.min() < result.data.max(), "a constant (or all-zero) result"


# ---- readers read: info and convert accept any valid file ------------------------------------


@settings(CLI, max_examples=60)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    dtype=st.sampled_from(["uint8", "uint16", "int32", "float32", "float64"]),
    constant=st.booleans(),
    fmt=st.sampled_from([".tif", ".ome.tif", ".ome.zarr", ".npy"]),
)
def test_info_and_convert_read_any_valid_file(run_cli, shape, dtype, constant, fmt):
    data = (np.arange(int(np.prod(shape))) % 7).reshape(shape).astype(dtype)
    if constant:
        data[...] = 5
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in{fmt}"
        nd.write(src, data, dtype="keep", voxel_size_um=(0.5, 0.2, 0.2))
        code, out, err = run_cli("info", src, "--json", "--voxel-size", "0.5", "0.2", "0.2")
        assert code == 0, err
        info = json.loads(out)
        assert info["min"] == data.min() and info["max"] == data.max()
        dst = Path(tmp) / "copy.ome.tif"
        code, _, err = run_cli("convert", src, dst, "--voxel-size", "0.5", "0.2", "0.2")
        assert code == 0, err
        np.testing.assert_array_equal(nd.read(dst).data.reshape(-1), data.reshape(-1))
        no_partials(Path(tmp))


# ---- the cases of the issue ------------------------------------------------------------------


def _stack(path: Path, data: np.ndarray, vox=(0.3, 0.1, 0.1)) -> Path:
    nd.write(path, data, dtype="keep", voxel_size_um=vox)
    return path


def _counts(shape=(16, 32, 32), seed=0) -> np.ndarray:
    return (100 + 80 * np.random.default_rng(seed).random(shape)).astype(np.uint16)


GAUSS = ("--model", "gaussian", "--fwhm", "0.6", "0.2", "0.2", "--iterations", "5")


def test_data_at_or_below_the_background_is_an_error(run_cli, tmp_path):
    neg = _stack(tmp_path / "neg.tif", -(1 + np.random.default_rng(1).random((8, 16, 16))))
    for extra in ((), ("--background", "auto")):
        code, _, err = run_cli("deconvolve", neg, *GAUSS, *extra, "-o", tmp_path / "n.tif")
        assert code == 2 and "no positive value" in one_error_line(code, err)
    counts = _stack(tmp_path / "c.tif", _counts())
    code, _, err = run_cli("deconvolve", counts, *GAUSS, "--background", "1e9", "-o", "b.tif")
    line = one_error_line(code, err)
    assert code == 2 and "at or below the given background 1e+09" in line and "179" in line
    assert not list(tmp_path.glob("[nb].tif"))


@pytest.mark.parametrize(
    ("psf_voxel", "words"),
    [
        (("1e-6", "1e-6", "1e-6"), "1/300,000 the image's"),
        (("100", "100", "100"), "1,000× the image's"),
        (("0.03", "0.01", "0.01"), "narrower than one voxel"),
        (("6", "2", "2"), "as wide as the whole image"),
    ],
)
def test_psf_voxel_sizes_that_cannot_be_right(run_cli, tmp_path, psf_voxel, words):
    image = _stack(tmp_path / "s.tif", _counts())
    code, _, _ = run_cli(
        "psf", "generate", "--model", "gaussian", "--fwhm", "0.6", "0.2", "0.2", "--shape",
        "9", "9", "9", "--voxel-size", "0.3", "0.1", "0.1", "-o", tmp_path / "p.tif",
    )  # fmt: skip
    assert code == 0
    code, _, err = run_cli(
        "deconvolve", image, "--psf", tmp_path / "p.tif", "--psf-voxel-size", *psf_voxel,
        "--iterations", "3", "-o", tmp_path / "o.tif",
    )  # fmt: skip
    line = one_error_line(code, err)
    assert code == 2 and words in line and "micrometres" in line, line
    assert not (tmp_path / "o.tif").exists()


def test_image_voxel_size_off_by_1000_compared_with_the_optics(run_cli, tmp_path):
    image = _stack(tmp_path / "s.tif", _counts())
    code, _, err = run_cli(
        "deconvolve", image, "--voxel-size", "300", "100", "100", "--model", "widefield",
        "-o", tmp_path / "o.tif",
    )  # fmt: skip
    line = one_error_line(code, err)
    assert code == 2 and "FWHM" in line and "a single voxel" in line


def test_sizes_beyond_the_memory_are_refused_before_allocating(run_cli, tmp_path, monkeypatch):
    import neurodecon.memory

    monkeypatch.setattr(neurodecon.memory, "available_bytes", lambda: 8 * 10**9)
    code, _, err = run_cli(
        "psf", "generate", "--model", "widefield", "--shape", "2001", "2001", "2001",
        "--voxel-size", "0.1", "0.1", "0.1", "-o", tmp_path / "big.tif",
    )  # fmt: skip
    line = one_error_line(code, err)
    assert code == 3 and "2001×2001×2001" in line and "8 GB are available" in line
    assert "--tile" not in line
    monkeypatch.setattr(neurodecon.memory, "available_bytes", lambda: 10**6)
    image = _stack(tmp_path / "s.tif", _counts())
    code, _, err = run_cli("deconvolve", image, *GAUSS, "-o", tmp_path / "o.tif")
    line = one_error_line(code, err)
    assert code == 3 and "crop the stack" in line and not (tmp_path / "o.tif").exists()


def test_out_of_memory_while_computing_is_one_line(run_cli, tmp_path, monkeypatch):
    import neurodecon.classical

    def boom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(neurodecon.classical, "deconvolve", boom)
    image = _stack(tmp_path / "s.tif", _counts())
    code, _, err = run_cli("deconvolve", image, *GAUSS, "-o", tmp_path / "o.tif")
    line = one_error_line(code, err)
    assert code == 3 and "out of memory" in line and "--tile" not in line


def test_unchecked_options_are_checked(run_cli, tmp_path):
    beads = _stack(tmp_path / "beads.tif", _counts())
    code, _, err = run_cli("psf", "extract", beads, "--bead-diameter", "-1", "-o", "p.tif")
    assert code == 2 and "--bead-diameter must be positive" in one_error_line(code, err)
    code, _, err = run_cli("deconvolve", beads, "--model", "widefield", "--na", "nan", "-o", "x")
    assert code == 2 and "--na must be a finite number" in one_error_line(code, err)
    code, _, err = run_cli("deconvolve", beads, "--iterations", "many", "-o", "x")
    assert code == 2 and "iterations" in one_error_line(code, err)
    with pytest.raises(SystemExit) as exc:  # an argparse mistake: one line too
        run_cli("deconvolve", beads, "--methd", "rl", "-o", "x")
    assert exc.value.code == 2


def test_zero_iterations_write_a_file_that_info_reads(run_cli, tmp_path):
    image = _stack(tmp_path / "s.tif", _counts())
    out = tmp_path / "flat.tif"
    code, _, err = run_cli("deconvolve", image, *GAUSS[:-2], "--iterations", "0", "-o", out)
    assert code == 0 and "the result is the initial estimate" in err
    code, printed, _ = run_cli("info", out, "--json")
    assert code == 0 and json.loads(printed)["min"] == json.loads(printed)["max"]


# ---- faults: full disk, read-only and forbidden folders, interrupts --------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 kB tmpfs where the test may mount one (root on Linux), else None."""
    mount = tmp_path / "small"
    mount.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.ome.zarr", "out.npy"])
def test_full_disk_is_one_line_and_leaves_nothing(run_cli, tmp_path, small_disk, name):
    src = _stack(tmp_path / "big.tif", np.random.default_rng(0).random((16, 64, 64), np.float32))
    if small_disk is None:
        pytest.skip("no tmpfs can be mounted here (see the injected test below)")
    code, _, err = run_cli("convert", src, small_disk / name)
    line = one_error_line(code, err)
    assert code == 4 and "the disk is full" in line and str(small_disk / name) in line
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        (OSError("65536 requested and 51000 written"), 4, "the disk is full"),
        (OSError(errno.ENOSPC, "No space left on device"), 4, "the disk is full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 4, "quota"),
        (PermissionError(errno.EACCES, "Permission denied"), 5, "permission denied"),
        (OSError(errno.EROFS, "Read-only file system"), 5, "read-only"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
@pytest.mark.parametrize("name", ["out.tif", "out.ome.zarr"])
def test_write_faults_injected(run_cli, tmp_path, monkeypatch, fault, code, words, name):
    """The OS error is raised after part of the file was written (works as any user)."""
    import zarr

    src = _stack(tmp_path / "in.tif", _counts((4, 8, 8)))

    def fail_after_writing(path, *args, **kwargs):
        Path(path).mkdir() if name.endswith("zarr") else Path(path).write_bytes(b"partial")
        raise fault

    target = (zarr, "open_group") if name.endswith("zarr") else (tifffile, "imwrite")
    monkeypatch.setattr(*target, fail_after_writing)
    got, _, err = run_cli("convert", src, tmp_path / name)
    line = one_error_line(got, err)
    assert got == code and words in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_read_only_file_system_is_refused_before_writing(run_cli, tmp_path, small_disk):
    src = _stack(tmp_path / "in.tif", _counts((4, 8, 8)))
    if small_disk is None:
        pytest.skip("no tmpfs can be mounted here")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, _, err = run_cli("convert", src, small_disk / "o.tif")
    assert code == 5 and "read-only" in one_error_line(code, err)


def _cli(*args: str, cwd: Path, env: dict | None = None, **kwargs) -> subprocess.Popen:
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    environ.update(env or {})
    code = "import sys; from neurodecon.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=environ, text=True, **kwargs
    )


def _long_run(tmp_path: Path, *extra: str) -> list[str]:
    _stack(tmp_path / "s.tif", _counts((8, 48, 48)))
    return ["deconvolve", "s.tif", *GAUSS[:-2], "--iterations", "100000", *extra, "-o", "o.tif"]


def _wait_for(path: Path, pattern: str, timeout: float = 60.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text() if path.exists() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in {path.read_text()!r}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_with_one_line_and_no_leftover(tmp_path, sig, code):
    """A long run with stderr in a file: progress lines appear, then the signal stops it."""
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        proc = _cli(
            *_long_run(tmp_path),
            cwd=tmp_path,
            env={"NEURODECON_PROGRESS_INTERVAL": "0.3"},
            stdout=subprocess.DEVNULL,
            stderr=fh,
            # a shell without job control starts background jobs with SIGINT ignored, and so
            # would their children be: give the run the terminal's default, as a user's has
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            _wait_for(log, r"Deconvolving \(rl\): \d+ % \(\d+/100000, rl\), ETA")
            proc.send_signal(sig)
            assert proc.wait(timeout=60) == code
        finally:
            proc.kill()
            proc.wait()
    text = log.read_text()
    line = one_error_line(code, text)
    assert ("interrupted" if sig == signal.SIGINT else "terminated") in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", "s.tif"]


def test_quiet_prints_no_progress(run_cli, tmp_path, monkeypatch):
    """stderr here is not a terminal (captured): plain progress lines, unless --quiet."""
    monkeypatch.setenv("NEURODECON_PROGRESS_INTERVAL", "0")
    image = _stack(tmp_path / "s.tif", _counts((8, 32, 32)))
    args = ["deconvolve", image, *GAUSS[:-2], "--iterations", "40"]
    code, _, loud = run_cli(*args, "-o", tmp_path / "loud.tif")
    assert code == 0 and "Deconvolving (rl): 100 % (40/40, rl), done" in loud
    assert re.search(r"\[\s+\d+ s\] Deconvolving \(rl\): 50 % \(20/40, rl\), ETA \d+ s", loud)
    code, _, quiet = run_cli("--quiet", *args, "-o", tmp_path / "global.tif")
    assert code == 0 and quiet == ""
    code, _, quiet = run_cli(*args, "-q", "-o", tmp_path / "local.tif")
    assert code == 0 and quiet == ""


def test_kill_9_leaves_nothing_under_the_output_name_and_the_next_run_cleans_up(run_cli, tmp_path):
    """A writer killed with SIGKILL mid-file leaves only a hidden .partial sibling."""
    src = _stack(tmp_path / "in.tif", _counts((4, 8, 8)))
    out = tmp_path / "out.tif"
    script = (
        "import sys, time, numpy as np, tifffile, neurodecon as nd\n"
        "def slow(path, *a, **k):\n"
        "    open(path, 'wb').write(b'II*\\x00 partial')\n"
        "    print('writing', flush=True); time.sleep(600)\n"
        "tifffile.imwrite = slow\n"
        f"nd.write({str(out)!r}, np.ones((2, 3, 4), np.float32))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdout.close()
    partials = [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert len(partials) == 1 and partials[0].name.startswith(".out.tif.") and not out.exists()
    code, _, err = run_cli("convert", src, out)
    assert code == 0 and "removed a temporary file left by an interrupted earlier run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


# ---- progress in logs, provenance ------------------------------------------------------------


def test_progress_lines_through_the_python_callback():
    import io

    from neurodecon.progress import DEFAULT_INTERVAL_S, TextProgress

    assert 10 <= DEFAULT_INTERVAL_S <= 30
    stream = io.StringIO()
    img = _counts((8, 24, 24)).astype(np.float32)
    psf = nd.make_psf("gaussian", shape=(5, 7, 7), voxel_size_um=(0.3, 0.1, 0.1))
    progress = TextProgress("Deconvolving (rl)", interval_s=0.0, stream=stream)
    nd.deconvolve(img, psf, iterations=20, device="cpu", progress=progress)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20
    assert re.fullmatch(
        r"\[\s+\d+ s\] Deconvolving \(rl\): 50 % \(10/20, rl\), ETA \d+ s", lines[9]
    )
    assert lines[-1].endswith("100 % (20/20, rl), done")


def test_provenance_records_the_command_as_typed_not_the_interpreter(tmp_path):
    _stack(tmp_path / "in.tif", _counts((4, 8, 8)))
    proc = _cli("convert", "in.tif", "out.ome.tif", cwd=tmp_path, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    prov = nd.read(tmp_path / "out.ome.tif").metadata["provenance"]
    assert prov["command"] == "neurodecon convert in.tif out.ome.tif"
    assert prov["version"] == nd.__version__ and prov["parameters"]["input"] == "in.tif"
    text = json.dumps(prov)
    assert sys.executable not in text and str(tmp_path) not in text and "python" not in text


def test_a_negative_bead_diameter_is_refused_through_the_api():
    from neurodecon.errors import NeuroDeconError
    from neurodecon.psf import resolve_psf

    with pytest.raises(NeuroDeconError, match="bead diameter must be a positive"):
        resolve_psf(
            image_shape=(8, 16, 16),
            image_voxel_size_um=(0.3, 0.1, 0.1),
            beads=_counts((8, 16, 16)),
            beads_voxel_size_um=(0.3, 0.1, 0.1),
            bead_diameter_um=-1.0,
        )


def test_option_values_found_by_hand_fuzzing(run_cli, tmp_path, monkeypatch):
    """Found: --seed -1 ended in 'internal error (ValueError)'; a 1e9 AU pinhole and a
    --psf-shape far larger than the image ran out of memory (the latter was killed by the OS)."""
    import neurodecon.memory

    code, _, err = run_cli(
        "simulate", "--phantom", "tubes", "--shape", "8", "16", "16", "--voxel-size", "0.3",
        "0.1", "0.1", "--model", "gaussian", "--seed", "-1", "-o", tmp_path / "sim",
    )  # fmt: skip
    assert code == 2 and "--seed must not be negative" in one_error_line(code, err)
    monkeypatch.setattr(neurodecon.memory, "available_bytes", lambda: 10**9)
    code, _, err = run_cli(
        "psf", "generate", "--model", "confocal", "--shape", "9", "9", "9", "--voxel-size",
        "0.3", "0.1", "0.1", "--pinhole", "1e9", "-o", tmp_path / "p.tif",
    )  # fmt: skip
    assert code == 3 and "1e+09 AU pinhole" in one_error_line(code, err)
    image = _stack(tmp_path / "s.tif", _counts())
    out = tmp_path / "o.tif"
    args = ("--psf-shape", "1001", "1001", "1001", "--psf-out", tmp_path / "psf.tif")
    code, _, err = run_cli("deconvolve", image, *GAUSS, *args, "-o", out)
    assert code == 0, err  # computed at the image's size (16, 32, 32), not 1001³
    assert nd.read(tmp_path / "psf.tif").shape == (16, 32, 32)


def test_evaluate_compare_and_simulate_edge_cases(run_cli, tmp_path):
    """Found: evaluate on a 1×1×1 stack raised IndexError inside the metrics; compare crashed
    ('cannot convert float NaN to integer') when the PSF's FWHM could not be measured; simulate
    --photons 1e30 raised numpy's 'lam value too large'."""
    one = _stack(tmp_path / "one.tif", np.ones((1, 1, 1), np.float32))
    code, _, err = run_cli("evaluate", one)
    assert code == 2 and "at least 2 voxels along two axes" in one_error_line(code, err)
    image = _stack(tmp_path / "s.tif", _counts((6, 24, 24)), vox=(1.0, 1.0, 1.0))
    code, _, err = run_cli(
        "compare", image, "--model", "gaussian", "--fwhm", "0.6", "0.2", "0.2", "--methods",
        "rl", "--iterations", "2", "-o", tmp_path / "report",
    )  # fmt: skip
    assert code == 0 and "narrower than one voxel" in err and "Traceback" not in err
    assert (tmp_path / "report" / "report.html").exists()
    code, _, err = run_cli(
        "simulate", "--phantom", "tubes", "--shape", "8", "16", "16", "--voxel-size", "0.3",
        "0.1", "0.1", "--model", "gaussian", "--photons", "1e30", "-o", tmp_path / "sim",
    )  # fmt: skip
    assert code == 2 and "--no-poisson" in one_error_line(code, err)


@settings(CLI, max_examples=40)
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9)),
    kind=st.sampled_from(["noise", "ramp", "spike", "constant", "negative", "tiny", "huge"]),
    command=st.sampled_from(["info", "psf info", "evaluate", "evaluate --truth"]),
)
def test_inspecting_commands_answer_or_give_one_line(run_cli, shape, kind, command):
    data = _values(kind, shape, np.random.default_rng(0)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # as outside the test suite (which turns warnings into errors): a library's warning,
        # e.g. numpy's overflow in a metric of 1e32 data, is one "warning:" line
        warnings.simplefilter("always")
        src = _stack(Path(tmp) / "x.ome.tif", data)
        args = [*command.split(), str(src)] + ([str(src)] if command.endswith("truth") else [])
        code, _, err = run_cli(*args)
        assert code in (0, 2), (code, err)
        assert all(ln.startswith(("warning:", "info:", "error:")) for ln in err.splitlines()), err
        if code:
            one_error_line(code, err)
        assert "Traceback" not in err


def test_deconvolve_checks_the_output_folder_before_computing(run_cli, tmp_path, monkeypatch):
    import neurodecon.classical

    def never(*args, **kwargs):
        raise AssertionError("computed before the output folder was checked")

    monkeypatch.setattr(neurodecon.classical, "deconvolve", never)
    image = _stack(tmp_path / "s.tif", _counts())
    code, _, err = run_cli("deconvolve", image, *GAUSS, "-o", tmp_path / "nope" / "o.tif")
    assert code == 2 and "output folder does not exist" in one_error_line(code, err)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode)
    )
    code, _, err = run_cli("deconvolve", image, *GAUSS, "-o", tmp_path / "o.tif")
    assert code == 5 and "permission denied" in one_error_line(code, err)
