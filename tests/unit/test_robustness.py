"""Property-based robustness of ``nd.read`` and ``nd.deconvolve`` (issue: every input works or
gets one clear line).

Random shapes, pixel types, axis layouts, value pathologies, PSF shapes and offsets. The
invariant: a correct result (the data bit-exact, or a finite, non-zero deconvolution of the right
shape) or a one-line :class:`~neurodecon.NeuroDeconError` — never another exception. Deterministic
(``derandomize=True``) and bounded; the CLI half is ``test_robustness_cli.py``.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodecon as nd
from neurodecon.classical import METHODS
from neurodecon.errors import NeuroDeconError

#: Deterministic in CI, no per-example deadline (2 shared cores), bounded example counts.
ROBUST = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

DTYPES = [
    np.uint8,
    np.uint16,
    np.int16,
    np.int32,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
]


def one_line(exc: NeuroDeconError) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith("."), text
    return text


# ---- reading: every TIFF tifffile can read opens with the right axes or gets one line ---------


@st.composite
def stored_arrays(draw):
    ndim = draw(st.integers(1, 6))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = int(np.prod(shape))
    kind = draw(st.sampled_from(["ramp", "constant", "nan", "inf"]))
    data = (np.arange(n) % 97).reshape(shape).astype(dtype)
    if kind == "constant":
        data[...] = 3
    elif kind in ("nan", "inf") and dtype.kind in "fc":
        data.flat[n // 2] = np.nan if kind == "nan" else np.inf
    return data


LAYOUTS = ["shaped", "shaped-axes", "ome", "imagej", "npy"]


def _write(path: Path, data: np.ndarray, layout: str, axes: str) -> None:
    if layout == "shaped":
        tifffile.imwrite(path, data, photometric="minisblack")
    elif layout == "shaped-axes":
        tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": axes})
    elif layout == "ome":
        tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata={"axes": axes})
    elif layout == "imagej":
        tifffile.imwrite(path, data, imagej=True, photometric="minisblack", metadata={"axes": axes})
    else:
        np.save(path, data)


def _valid_for(layout: str, data: np.ndarray) -> bool:
    if layout == "imagej":
        return data.dtype in (np.uint8, np.uint16, np.float32) and 2 <= data.ndim <= 5
    if layout in ("ome", "shaped-axes"):
        return 2 <= data.ndim <= 5
    return True


@settings(ROBUST, max_examples=150)
@given(data=stored_arrays(), layout=st.sampled_from(LAYOUTS))
def test_read_returns_the_data_with_its_axes_or_one_line(data, layout):
    if not _valid_for(layout, data):
        layout = "shaped"
    letters = "TCZYX"[-data.ndim :] if data.ndim <= 5 else None
    if layout == "imagej":
        letters = "TZCYX"[-data.ndim :]
    suffix = ".npy" if layout == "npy" else (".ome.tif" if layout == "ome" else ".tif")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tifffile's own notes about odd layouts
            try:
                _write(path, data, layout, letters or "")
            except Exception:  # noqa: BLE001 - tifffile cannot store this layout: nothing to read
                return
        try:
            image = nd.read(path, voxel_size_um=(1, 1, 1))
        except NeuroDeconError as exc:
            text = one_line(exc)
            expected = (
                data.ndim < 2
                or data.ndim > 5
                or data.dtype.kind == "c"
                or (data.dtype.kind == "f" and not np.isfinite(data).all())
            )
            assert expected, text
            return
        assert data.ndim in (2, 3, 4, 5) and data.dtype.kind != "c"
        stored = data
        if layout == "imagej":  # stored T Z C Y X, read as T C Z Y X
            stored = (
                np.moveaxis(data, letters.index("C"), letters.index("Z"))
                if "C" in (letters or "") and "Z" in (letters or "")
                else data
            )
        # tifffile drops length-1 axes of some layouts: the values and their order survive
        assert image.data.size == data.size
        np.testing.assert_array_equal(image.data.reshape(-1), stored.reshape(-1))
        assert len(image.axes) == image.data.ndim and len(set(image.axes)) == len(image.axes)
        if layout in ("shaped", "shaped-axes", "npy"):
            assert image.shape == data.shape and image.axes == letters, (image.axes, image.shape)
        if layout == "ome":  # OME-XML cannot tell a 2-D image from one plane: length 1 is dropped
            kept = [(a, n) for a, n in zip(letters, data.shape, strict=True) if n > 1 or a in "YX"]
            assert image.axes == "".join(a for a, _ in kept), image.axes
            assert image.shape == tuple(n for _, n in kept)


def test_the_reported_tiffs_read_with_the_right_axes(tmp_path):
    """1×1×1 and a 5-D array written by tifffile without axes: read, not tifffile's messages."""
    tifffile.imwrite(tmp_path / "one.tif", np.ones((1, 1, 1), np.uint16))
    one = nd.read(tmp_path / "one.tif", voxel_size_um=(1, 1, 1))
    assert one.shape == (1, 1, 1) and one.axes == "ZYX"
    five = (np.arange(2 * 2 * 3 * 8 * 8) % 89).astype(np.uint16).reshape(2, 2, 3, 8, 8)
    tifffile.imwrite(tmp_path / "five.tif", five, photometric="minisblack")
    image = nd.read(tmp_path / "five.tif", voxel_size_um=(1, 1, 1))
    assert image.axes == "TCZYX" and image.shape == five.shape
    np.testing.assert_array_equal(image.data, five)
    tifffile.imwrite(tmp_path / "col.tif", np.arange(8, dtype=np.uint8).reshape(8, 1, 1))
    assert nd.read(tmp_path / "col.tif", voxel_size_um=(1, 1, 1)).shape == (8, 1, 1)
    six = np.ones((2, 2, 2, 2, 2, 2), np.uint8)
    tifffile.imwrite(tmp_path / "six.tif", six, photometric="minisblack")
    with pytest.raises(NeuroDeconError, match="cannot tell the axes of this 6-D TIFF") as err:
        nd.read(tmp_path / "six.tif")
    one_line(err.value)


def test_read_accepts_a_constant_image(tmp_path):
    path = tmp_path / "flat.ome.tif"
    nd.write(path, np.full((3, 4, 5), 7.0, np.float32), voxel_size_um=(0.3, 0.1, 0.1))
    assert nd.read(path).data.max() == 7.0  # was "the image is constant"


# ---- nd.deconvolve: a finite, non-zero result of the right shape, or one line ----------------

PATHOLOGIES = [
    "ramp",
    "noise",
    "constant",
    "zeros",
    "negative",
    "spike",
    "huge",
    "tiny",
    "nan",
    "inf",
    "mixed-sign",
]


def _image(kind: str, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    n = int(np.prod(shape))
    base = 100 + 80 * rng.random(shape)
    if kind == "ramp":
        return np.linspace(1, 50, n).reshape(shape)
    if kind == "noise":
        return base
    if kind == "constant":
        return np.full(shape, 7.0)
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "negative":
        return -base
    if kind == "spike":
        out = np.zeros(shape)
        out[tuple(s // 2 for s in shape)] = 1000.0
        return out
    if kind == "huge":
        return base * 1e30
    if kind == "tiny":
        return base * 1e-30
    if kind == "mixed-sign":
        return base - 140
    out = base.copy()
    out.flat[n // 3] = np.nan if kind == "nan" else np.inf
    return out


def _psf(kind: str, shape: tuple[int, int, int], offset: tuple[int, int, int]) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    psf = np.exp(-((zz - offset[0]) ** 2 / 2.0 + (yy - offset[1]) ** 2 + (xx - offset[2]) ** 2))
    if kind == "delta":
        psf = np.zeros(shape)
        psf[tuple(min(n - 1, max(0, n // 2 + o)) for n, o in zip(shape, offset, strict=True))] = 1
    elif kind == "zeros":
        psf = np.zeros(shape)
    elif kind == "negative":
        psf = -psf
    elif kind == "nan":
        psf = psf.copy()
        psf.flat[0] = np.nan
    elif kind == "offset-floor":
        psf = psf + 0.05
    return psf


@st.composite
def deconvolution_cases(draw):
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 10)), draw(st.integers(2, 10)))
    psf_shape = tuple(draw(st.integers(1, 7)) for _ in range(3))
    offset = tuple(draw(st.integers(-2, 2)) for _ in range(3))
    return {
        "image": draw(st.sampled_from(PATHOLOGIES)),
        "dtype": draw(st.sampled_from([np.float32, np.float64, np.uint16, np.int16])),
        "shape": shape,
        "psf": draw(st.sampled_from(["gauss"] * 6 + ["delta", "offset-floor", "zeros", "nan"])),
        "psf_shape": psf_shape,
        "offset": offset,
        "method": draw(st.sampled_from(METHODS)),
        "iterations": draw(st.sampled_from([1, 3, "auto"])),
        "background": draw(st.sampled_from([0.0, "auto", 150.0, -5.0, 1e9])),
        "seed": draw(st.integers(0, 3)),
    }


@settings(ROBUST, max_examples=200)
@given(case=deconvolution_cases())
def test_deconvolve_gives_a_finite_nonzero_result_or_one_line(case):
    rng = np.random.default_rng(case["seed"])
    image = _image(case["image"], case["shape"], rng)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cast of NaN/huge values below
        image = image.astype(case["dtype"])
    psf = _psf(case["psf"], case["psf_shape"], case["offset"])
    try:
        out = nd.deconvolve(
            image,
            psf,
            method=case["method"],
            iterations=case["iterations"],
            background=case["background"],
            device="cpu",
        )
    except NeuroDeconError as exc:
        one_line(exc)
        return
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.any(), "a silent all-zero result"


# ---- what the suite found, pinned ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_value_scales_give_the_scaled_result(method, scale):
    """Found: rl/rltv gave all zeros at 1e-30 (the ratio's floor), rltv raised a RuntimeError at
    1e30, wiener returned NaN at both (spectra under-/overflowed float32)."""
    rng = np.random.default_rng(0)
    img = (100 + 80 * rng.random((6, 16, 16))).astype(np.float32)
    psf = nd.make_psf("gaussian", shape=(5, 7, 7), voxel_size_um=(0.3, 0.1, 0.1))
    options = {"method": method, "iterations": 5, "background": 50.0, "device": "cpu"}
    ref = nd.deconvolve(img, psf, **options)
    got = nd.deconvolve(img * np.float32(scale), psf, **{**options, "background": 50 * scale})
    np.testing.assert_allclose(got / scale, ref, rtol=1e-4, atol=1e-4 * float(ref.max()))


def test_auto_iterations_on_huge_integer_valued_data():
    """Found: 1e30 data are whole numbers in float32; cast to int64 they overflowed and the
    binomial thinning raised 'ValueError: n < 0'."""
    img = np.round(1e30 * (1 + np.random.default_rng(1).random((4, 12, 12)))).astype(np.float32)
    psf = nd.make_psf("gaussian", shape=(3, 5, 5), voxel_size_um=(0.3, 0.1, 0.1))
    res = nd.deconvolve(img, psf, iterations="auto", device="cpu", return_result=True)
    assert res.iterations >= 1 and np.isfinite(res.data).all() and res.data.any()


@pytest.mark.parametrize("kind", ["constant", "spike"])
def test_wiener_on_noise_free_data_is_finite(kind):
    """Found: data without noise have a zero noise power, and Wiener's λ S_n / S_y was 0/0."""
    image = _image(kind, (1, 5, 8), np.random.default_rng(0)).astype(np.float32)
    out = nd.deconvolve(image, _psf("gauss", (5, 1, 1), (0, 0, 0)), method="wiener")
    assert np.isfinite(out).all() and out.any()


def test_complex_pixels_are_refused_in_one_line(tmp_path):
    """Found: a complex64 TIFF was read and reached the engine, which dropped the imaginary part."""
    tifffile.imwrite(tmp_path / "c.tif", np.ones((2, 4, 4), np.complex64), photometric="minisblack")
    with pytest.raises(NeuroDeconError, match="unsupported pixel type complex64") as err:
        nd.read(tmp_path / "c.tif")
    one_line(err.value)


def test_all_length_one_shaped_tiff_is_read(tmp_path):
    """Found: tifffile cannot build the series of a 1×1×1×1×1 shaped TIFF (IndexError)."""
    tifffile.imwrite(tmp_path / "t.tif", np.full((1, 1, 1, 1, 1), 9, np.uint8))
    image = nd.read(tmp_path / "t.tif", voxel_size_um=(1, 1, 1))
    assert image.shape == (1, 1, 1, 1, 1) and image.axes == "TCZYX" and image.data.max() == 9
