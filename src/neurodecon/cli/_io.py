"""``neurodecon info`` and ``neurodecon convert``: inspect and convert images, keep voxel sizes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_voxel_size, print_json

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``info`` and ``convert`` to the main parser."""
    p = sub.add_parser(
        "info",
        help="shape, pixel type, axes, voxel size and value range of an image (or a model)",
        description="Print what NeuroDecon reads from an image file, folder or glob; for a "
        "model folder (written by `neurodecon train`), its architecture, parameter count and "
        "what it was trained for.",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="TIFF, OME-TIFF, OME-Zarr, .npy, a folder/glob of TIFF planes, or a MODEL_DIR",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_voxel_size(p)
    p.set_defaults(func=_info)

    p = sub.add_parser(
        "convert",
        help="convert between TIFF, OME-TIFF, OME-Zarr, .npy and z-series folders",
        description="Copy an image into another format, keeping data, voxel size and "
        "provenance. The pixel type is kept unless --dtype is given.",
    )
    p.add_argument("input", metavar="IN", help="input file, folder or glob")
    p.add_argument("output", metavar="OUT", help="output: .tif, .ome.tif, .ome.zarr or .npy")
    add_voxel_size(p)
    p.add_argument(
        "--dtype",
        choices=("keep", "float32", "uint16"),
        default="keep",
        help="output pixel type: keep (default, a faithful copy), float32, or uint16 "
        "(linear scaling recorded in the metadata)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_convert)


def _summary(image, path: str) -> dict[str, Any]:
    data = image.data
    meta = image.metadata
    info: dict[str, Any] = {
        "file": path,
        "format": meta.get("format", "unknown"),
        "shape": list(data.shape),
        "dtype": str(data.dtype),
        "axes": image.axes,
        "voxel_size_um": [float(v) for v in image.voxel_size_um],
        "voxel_size_assumed": bool(image.voxel_size_assumed),
        "voxel_size_source": meta.get("voxel_size_source"),
        "min": data.min().item(),
        "max": data.max().item(),
        "mean": float(data.mean(dtype="float64")),
        "size_mb": round(data.nbytes / 1e6, 3),
    }
    for key in ("compression", "channel_picked", "n_files", "scaling", "provenance", "warnings"):
        if key in meta:
            info[key] = meta[key]
    return info


def _model_summary(path: Path) -> dict[str, Any]:
    from ..learn import count_parameters, load_model

    model = load_model(path)
    cfg = model.config
    net: Any = model.net  # build_network's: every network has multiple and in_channels
    best = (cfg.get("validation") or {}).get("best") or {}
    return {
        "model": str(path),
        "arch": model.arch,
        "n_parameters": count_parameters(model.net),
        "network": cfg.get("network"),
        "size_multiple": int(net.multiple),
        "in_channels": int(net.in_channels),
        "voxel_size_um": list(model.voxel_size_um),
        "description": cfg.get("description"),
        "steps_done": cfg.get("steps_done"),
        "validation_best": best,
    }


def _model_info(args: argparse.Namespace, path: Path) -> int:
    info = _model_summary(path)
    if args.json:
        print_json(info)
        return 0
    vz, vy, vx = info["voxel_size_um"]
    best = info["validation_best"]
    lines = [
        f"model       {info['model']}",
        f"arch        {info['arch']}",
        f"parameters  {info['n_parameters']:,}",
        f"input       {info['in_channels']} channel(s), sizes in multiples of "
        f"{info['size_multiple']} (padded by predict)",
        f"voxel size  z {vz:.6g}  y {vy:.6g}  x {vx:.6g} µm",
        f"trained     {info['steps_done']} steps"
        + (f"; validation PSNR {best['psnr']:.2f} dB" if "psnr" in best else ""),
        f"about       {info['description']}",
    ]
    print("\n".join(lines))
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..io import read
    from ..learn import CONFIG_NAME

    path = Path(args.file)
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        return _model_info(args, path)
    image = read(args.file, voxel_size_um=args.voxel_size)
    info = _summary(image, args.file)
    if args.json:
        print_json(info)
        return 0
    vz, vy, vx = info["voxel_size_um"]
    lines = [
        f"file        {args.file}",
        f"format      {info['format']}"
        + (f" ({info['n_files']} files)" if "n_files" in info else ""),
        f"shape       {' x '.join(map(str, info['shape']))} ({info['axes']})",
        f"dtype       {info['dtype']}",
        f"voxel size  z {vz:.6g}  y {vy:.6g}  x {vx:.6g} µm"
        + ("  (ASSUMED: not in the metadata)" if info["voxel_size_assumed"] else ""),
        f"  from      {info['voxel_size_source']}",
        f"range       {info['min']} .. {info['max']} (mean {info['mean']:.6g})",
    ]
    if "channel_picked" in info:
        c = info["channel_picked"]
        lines.append(f"channel     {c['name']} of {c['of']} ({c['reason']})")
    if "scaling" in info:
        s = info["scaling"]
        lines.append(f"scaling     value = stored * {s['scale']:.6g} + {s['offset']:.6g}")
    if isinstance(info.get("provenance"), dict):
        prov = info["provenance"]
        lines.append(
            f"written by  neurodecon {prov.get('version', '?')}: {prov.get('command', '')}"
        )
    print("\n".join(lines))
    return 0


def _streams(args: argparse.Namespace) -> bool:
    """Whether ``convert`` can stream: TIFF or OME-Zarr in, OME-Zarr out, no uint16 scaling."""
    from ..io import format_of

    ins = format_of(args.input) in ("tiff", "ome-tiff", "ome-zarr") and Path(args.input).exists()
    return ins and format_of(args.output) == "ome-zarr" and args.dtype in ("keep", "float32")


def _convert_streaming(args: argparse.Namespace) -> int:
    """TIFF/OME-Zarr → OME-Zarr chunk by chunk: any size, never whole in memory."""
    from ..errors import NeuroDeconError
    from ..io import open_lazy, write_lazy

    try:
        lazy = open_lazy(args.input, voxel_size_um=args.voxel_size)
    except NeuroDeconError:  # RGB, fewer than 3 axes, ...: the in-memory path handles them
        return _convert_in_memory(args)
    with lazy:
        parameters = {"input": args.input, "dtype": args.dtype, "streamed": True,
                      "voxel_size_um": list(lazy.voxel_size_um),
                      "voxel_size_source": lazy.metadata.get("voxel_size_source")}  # fmt: skip
        out = write_lazy(args.output, lazy, dtype=args.dtype, overwrite=args.overwrite,
                         inputs=[args.input], provenance={"parameters": parameters})  # fmt: skip
    vz, vy, vx = lazy.voxel_size_um
    print(
        f"wrote {out}: {' x '.join(map(str, lazy.shape))} {lazy.axes}, "
        f"voxel size z {vz:.6g} y {vy:.6g} x {vx:.6g} µm (streamed)"
    )
    return 0


def _convert(args: argparse.Namespace) -> int:
    if _streams(args):
        return _convert_streaming(args)
    return _convert_in_memory(args)


def _convert_in_memory(args: argparse.Namespace) -> int:
    from ..io import read, write

    image = read(args.input, voxel_size_um=args.voxel_size, unscale=args.dtype != "keep")
    inputs = [args.input, *image.metadata.get("series_files", [])]
    parameters = {
        "input": args.input,
        "dtype": args.dtype,
        "voxel_size_um": list(image.voxel_size_um),
        "voxel_size_source": image.metadata.get("voxel_size_source"),
    }
    if "channel_picked" in image.metadata:
        parameters["channel_picked"] = image.metadata["channel_picked"]
    out = write(
        args.output,
        image,
        dtype=args.dtype,
        overwrite=args.overwrite,
        inputs=inputs,
        provenance={"parameters": parameters},
    )
    vz, vy, vx = image.voxel_size_um
    print(
        f"wrote {out}: {' x '.join(map(str, image.shape))} {image.axes}, "
        f"voxel size z {vz:.6g} y {vy:.6g} x {vx:.6g} µm"
    )
    return 0
