"""Export a NeuroDecon model as a bioimage.io model package (spec 0.5, PyTorch state dict).

The package's network is :class:`BioimageioNetwork`: the whole of :func:`neurodecon.learn.predict`
as one ``torch.nn.Module`` — raw counts in, deconvolved counts out. The model's whole-volume
percentile normalisation, the physics-aware variant's RL_K input channel (its PSF is a buffer of
the state dict) and the tiled inference all run inside it, so a bioimage.io consumer that runs
PyTorch state-dict weights (``bioimageio.core``, ``bioimageio test``) gets exactly what
``neurodecon deconvolve --model`` gives. The model directory itself travels as attachments:
re-importing a package made here is exact (:func:`neurodecon.learn.load_model` on the ``.zip``).
"""

from __future__ import annotations

import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from ..errors import user_error
from ._bioimageio_card import (
    PAPER,
    cover_image,
    documentation,
    package_config,
    plain_config,
)
from ._bioimageio_import import ATTACHMENT_PREFIX, quiet_unclosed_files
from ._limits import check_voxel_size
from ._model import CONFIG_NAME, Model, load_model
from ._net import build_network

__all__ = ["BioimageioNetwork", "export_bioimageio", "bioimageio_test_input"]

INPUT_ID = "raw"
OUTPUT_ID = "deconvolved"
#: Test tensor shape (Z, Y, X) of an exported package when no sample is given; also the largest
#: crop of a sample (its centre).
TEST_SHAPE = (32, 64, 64)


class BioimageioNetwork(torch.nn.Module):
    """A NeuroDecon model as one module: ``(B, 1, Z, Y, X)`` counts in, deconvolved counts out.

    Parameters
    ----------
    config : dict
        The model directory's ``config.json``.
    physics_psf_shape : (3,) ints, optional
        Shape of the physics-aware variant's RL_K PSF (a buffer, filled by ``load_state_dict``).
    """

    def __init__(self, config: dict[str, Any], physics_psf_shape: list[int] | None = None):
        super().__init__()
        self.config = config
        self.net = build_network(config)  # any architecture (config["arch"])
        if physics_psf_shape is not None:
            self.register_buffer("physics_psf", torch.zeros(tuple(physics_psf_shape)))

    @classmethod
    def from_model(cls, model: Model) -> BioimageioNetwork:
        """Wrap a loaded model (its network weights and RL_K PSF are copied)."""
        psf = model.physics_psf
        module = cls(plain_config(model.config), None if psf is None else list(psf.shape))
        module.net.load_state_dict(model.net.state_dict())
        if psf is not None:
            module.get_buffer("physics_psf").copy_(torch.from_numpy(np.asarray(psf, np.float32)))
        return module.eval()

    def model(self) -> Model:
        """Return the :class:`Model` this module runs (sharing its network)."""
        psf = getattr(self, "physics_psf", None)
        psf_np = None if psf is None else psf.detach().cpu().numpy().astype(np.float32)
        return Model(self.net, self.config, None, psf_np)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deconvolve every ``(Z, Y, X)`` volume of ``x``; same shape, float32, on x's device."""
        from ._predict import predict

        device = "cuda" if x.device.type == "cuda" else "cpu"
        data = x.detach().float().cpu().numpy()
        out = predict(self.model(), data, device=device, check=False)
        self.net.to(x.device)
        return torch.from_numpy(out).to(x.device)


def bioimageio_test_input(model: Model, *, seed: int = 0) -> np.ndarray:
    """Return a simulated stack for the package's test tensor, ``TEST_SHAPE``, float32 counts.

    A phantom of the families the model was trained on, blurred with the kernel it was trained to
    invert, at the middle of its trained photon range (geometric mean) with Poisson noise.
    """
    from ..synth import forward_model, phantom

    kernel = model.kernel_for(TEST_SHAPE, model.voxel_size_um)
    if kernel is None:
        raise user_error(
            "this model records no kernel to simulate a test input with",
            path=model.path,
            fix="pass a stack of your microscope with --sample IMAGE",
        )
    levels = ((model.config.get("trained_for") or {}).get("noise") or {}).get("input_levels", {})
    lo, hi = levels.get("photons", [100.0, 1000.0])
    truth = phantom(
        "ellipsoids,tubes,puncta", shape=TEST_SHAPE, voxel_size_um=model.voxel_size_um, seed=seed
    )
    photons = float(np.sqrt(max(lo, 1.0) * max(hi, 1.0)))
    return forward_model(truth, kernel, photons=photons, background=2.0, seed=seed).astype(
        np.float32
    )


def _sample_crop(sample: np.ndarray) -> np.ndarray:
    """Centre crop of a user's stack to at most ``TEST_SHAPE`` (one volume, float32)."""
    arr = np.asarray(sample, np.float32)
    if arr.ndim < 3:
        raise user_error(f"the sample must be a 3D stack, got shape {arr.shape}")
    arr = arr.reshape(-1, *arr.shape[-3:])[0]
    starts = [max((n - t) // 2, 0) for n, t in zip(arr.shape, TEST_SHAPE, strict=True)]
    return np.ascontiguousarray(
        arr[tuple(slice(s, s + t) for s, t in zip(starts, TEST_SHAPE, strict=True))]
    )


def export_bioimageio(
    model: Model | str | Path | None,
    output: str | Path,
    *,
    sample: Any = None,
    name: str | None = None,
    authors: list[str] | None = None,
    license: str = "CC-BY-4.0",
    device: str = "auto",
) -> Path:
    """Write ``model`` as a bioimage.io model package (a ``.zip``) and return its path.

    Parameters
    ----------
    model : Model, model directory or None
        ``None`` / ``"default"``: the model shipped with the package.
    output : path
        The ``.zip`` to write (written to a temporary file, then renamed).
    sample : (Z, Y, X) ndarray or neurodecon.io.Image, optional
        A stack of the model's microscope (counts) for the test tensors and the cover (its centre,
        at most ``TEST_SHAPE``; an Image's voxel size is checked against the model's); default
        :func:`bioimageio_test_input`.
    name, authors, license
        The package's name (default from the model's kernel), authors (default: "NeuroDecon
        user") and licence (SPDX id) of the weights.
    device : "auto" | "cpu" | "cuda"
        Where the test output is computed.

    Notes
    -----
    Needs the optional extra ``neurodecon[bioimageio]`` (``bioimageio.core``). The package
    declares float32 input and output in the model's intensity units with axes in µm; its
    normalisation and RL_K channel happen inside the network, so a consumer must give it whole
    volumes (or large blocks: normalisation is per input). No TorchScript weights are written:
    the RL_K channel and the tiling run Python code.
    """
    from ._predict import predict

    try:
        import bioimageio.spec  # noqa: F401
    except ImportError as exc:
        raise user_error(
            "exporting a bioimage.io package needs the bioimageio extra",
            fix="pip install 'neurodecon[bioimageio]'",
        ) from exc
    model = load_model(model)
    output = Path(output)
    if output.suffix != ".zip":
        raise user_error("a bioimage.io package is a .zip file", path=output, fix="name it X.zip")
    if hasattr(sample, "voxel_size_um"):  # a neurodecon.io.Image
        check_voxel_size(model, sample.voxel_size_um)
        sample = sample.data
    test_in = bioimageio_test_input(model) if sample is None else _sample_crop(sample)
    test_out = predict(model, test_in, device=device, check=False)
    with quiet_unclosed_files(), tempfile.TemporaryDirectory(prefix="neurodecon-bmz-") as tmp:
        _write_package(model, Path(tmp), output, test_in, test_out, name, authors, license)
    return output


def _write_package(model, folder, output, test_in, test_out, name, authors, license):  # noqa: ANN001
    from bioimageio.spec import save_bioimageio_package
    from pydantic import ValidationError

    try:
        descr = _describe(model, folder, test_in, test_out, name, authors, license)
    except ValidationError as exc:  # e.g. an unknown licence id
        err = exc.errors()[0]
        where = str(err["loc"][0]) if err["loc"] else "?"
        what = f"{license!r} is not an SPDX licence id" if where == "license" else err["msg"]
        raise user_error(
            f"the package description is invalid at {where}: {what[:200]}",
            fix="check --name, --author and --license (an SPDX id such as CC-BY-4.0)",
        ) from exc
    partial = output.with_name(output.name + ".partial")
    try:
        save_bioimageio_package(descr, output_path=partial)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _describe(model, folder, test_in, test_out, name, authors, license):  # noqa: ANN001
    import bioimageio.spec.model.v0_5 as v

    module = BioimageioNetwork.from_model(model)
    torch.save(module.state_dict(), folder / "weights.pt")
    np.save(folder / "test_input.npy", test_in[None, None])
    np.save(folder / "test_output.npy", test_out[None, None])
    tifffile.imwrite(folder / "sample_input.tif", test_in[None, None])
    tifffile.imwrite(folder / "sample_output.tif", test_out[None, None])
    cover_image(test_in, test_out, model.voxel_size_um, folder / "cover.png")
    (folder / "README.md").write_text(documentation(model), encoding="utf-8")
    attachments = _attach_model_dir(model, folder / "neurodecon_model")
    psf = model.physics_psf
    vz, vy, vx = model.voxel_size_um
    m = int(model.net.multiple)

    def space(cls, axis_id, size, scale):  # noqa: ANN001, ANN202
        return cls(id=v.AxisId(axis_id), size=size, scale=scale, unit="micrometer")

    in_axes = [v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier(INPUT_ID)])] + [
        space(v.SpaceInputAxis, a, v.ParameterizedSize(min=m, step=1), s)
        for a, s in zip("zyx", (vz, vy, vx), strict=True)
    ]
    out_axes = [v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier(OUTPUT_ID)])] + [
        space(v.SpaceOutputAxis, a, v.SizeReference(tensor_id=v.TensorId(INPUT_ID), axis_id=a), s)
        for a, s in zip("zyx", (vz, vy, vx), strict=True)
    ]
    float32 = v.EnsureDtypeDescr(kwargs=v.EnsureDtypeKwargs(dtype="float32"))
    arch = v.ArchitectureFromLibraryDescr(
        import_from="neurodecon.learn",
        callable=v.Identifier("BioimageioNetwork"),
        kwargs={
            "config": module.config,
            "physics_psf_shape": None if psf is None else list(psf.shape),
        },
    )
    return v.ModelDescr(
        name=package_name(name or _default_name(model)),
        description=str(model.config.get("description", "NeuroDecon deconvolution network"))[:1000],
        authors=[v.Author(name=a) for a in (authors or ["NeuroDecon user"])],
        cite=[v.CiteEntry(text=PAPER["text"], doi=v.Doi(PAPER["doi"]))],
        license=license,
        documentation=v.FileDescr(source=folder / "README.md"),
        covers=[v.FileDescr(source=folder / "cover.png")],
        tags=["deconvolution", "3d", "fluorescence-light-microscopy", "pytorch", "neurodecon"],
        attachments=attachments,
        inputs=[
            v.InputTensorDescr(
                id=v.TensorId(INPUT_ID),
                description="raw stack in camera counts (one volume, any size)",
                axes=in_axes,
                test_tensor=v.FileDescr(source=folder / "test_input.npy"),
                sample_tensor=v.FileDescr(source=folder / "sample_input.tif"),
                preprocessing=[float32],
            )
        ],
        outputs=[
            v.OutputTensorDescr(
                id=v.TensorId(OUTPUT_ID),
                description="deconvolved stack in the input's intensity units",
                axes=out_axes,
                test_tensor=v.FileDescr(source=folder / "test_output.npy"),
                sample_tensor=v.FileDescr(source=folder / "sample_output.tif"),
                postprocessing=[float32],
            )
        ],
        weights=v.WeightsDescr(
            pytorch_state_dict=v.PytorchStateDictWeightsDescr(
                source=folder / "weights.pt",
                architecture=arch,
                pytorch_version=v.Version(torch.__version__.split("+")[0]),
            )
        ),
        config=v.Config(**{"neurodecon": package_config(model)}),
    )


def _attach_model_dir(model: Model, target: Path) -> list[Any]:
    """Copy the model directory's files, prefixed ``neurodecon_``; return their FileDescrs.

    The prefix keeps them apart from the package's own ``weights.pt`` and ``README.md``.
    """
    import bioimageio.spec.model.v0_5 as v

    source = model.path
    if source is None:  # a model built in memory: write it as a directory first
        from ._model import save_model

        source = save_model(target.with_name("model_dir"), model.net, model.config,
                            physics_psf=model.physics_psf)  # fmt: skip
    target.mkdir()
    for f in sorted(source.iterdir()):
        skip = f.name.endswith((".tmp", ".partial")) or f.name.startswith("checkpoint")
        if f.is_file() and not skip:
            shutil.copy2(f, target / f"{ATTACHMENT_PREFIX}{f.name}")
    if not (target / f"{ATTACHMENT_PREFIX}{CONFIG_NAME}").is_file():
        raise user_error("the model has no config.json to attach", path=model.path)
    return [v.FileDescr(source=f) for f in sorted(target.iterdir())]


def package_name(text: str) -> str:
    """Return ``text`` as a bioimage.io model name: letters, digits, ``_+- ()``, ≤ 128 chars."""
    allowed = set(string.ascii_letters + string.digits + "_+- ()")
    return "".join(c if c in allowed else "-" for c in text)[:128].strip() or "NeuroDecon model"


def _default_name(model: Model) -> str:
    kernel = model.config.get("kernel") or {}
    mode = kernel.get("mode", "psf")
    optics = (model.config.get("trained_for") or {}).get("optics") or {}
    what = optics.get("model") or kernel.get("source", "")
    na = optics.get("na")
    tail = f" NA {na}" if na else ""
    return f"NeuroDecon {what}{tail} ({mode} mode)"[:128]
