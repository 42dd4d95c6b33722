"""``neurodecon psf generate`` and ``neurodecon psf info``: theoretical PSFs and their summary."""

from __future__ import annotations

import argparse

from ._common import add_output_options, add_psf_model_options, print_json, psf_params

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``psf generate`` and ``psf info``."""
    p = psf_sub.add_parser(
        "generate",
        help="compute a theoretical PSF (Gaussian, widefield, Gibson–Lanni, confocal, two-photon)",
        description="Compute a theoretical PSF centred at n//2, summing to 1, and write it "
        "with its voxel size.",
    )
    add_psf_model_options(p, required=True)
    p.add_argument(
        "--shape", nargs=3, type=int, metavar=("Z", "Y", "X"), required=True, help="PSF array shape"
    )
    p.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        required=True,
        help="voxel size in µm",
    )
    p.add_argument("-o", "--output", required=True, help="output file (.tif, .ome.tif, .npy, ...)")
    add_output_options(p)
    p.set_defaults(func=_generate)

    p = psf_sub.add_parser(
        "info",
        help="FWHM (z, y, x), centre, sum and axial asymmetry of a PSF file",
        description="Summarise a PSF: FWHM from Gaussian fits through the peak, where the peak "
        "is versus the expected centre n//2, the sum, and the axial asymmetry.",
    )
    p.add_argument("psf", metavar="PSF", help="PSF image file")
    p.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="voxel size in µm; overrides the file's metadata",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_info)


def _generate(args: argparse.Namespace) -> int:
    from ..psf import make_psf
    from ._common import write_output

    params = psf_params(args)
    psf = make_psf(
        args.psf_model, shape=tuple(args.shape), voxel_size_um=tuple(args.voxel_size), **params
    )
    from ..io import Image

    image = Image(data=psf, voxel_size_um=tuple(args.voxel_size), axes="ZYX")
    write_output(
        args,
        args.output,
        image,
        parameters={"model": args.psf_model, "shape": list(args.shape), **params},
    )
    print(
        f"wrote {args.output}: {args.psf_model} PSF {tuple(psf.shape)}, "
        f"voxel {tuple(args.voxel_size)} µm"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..errors import user_error
    from ..io import read
    from ..psf import psf_info

    image = read(args.psf, voxel_size_um=args.voxel_size, check=False)
    data = image.data
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise user_error(
            f"expected a 3-D PSF (Z, Y, X), got shape {image.data.shape}",
            path=args.psf,
            fix="give a single-channel PSF stack",
        )
    info = {
        "file": args.psf,
        **psf_info(data, image.voxel_size_um),
        "voxel_size_assumed": bool(image.voxel_size_assumed),
    }
    if args.json:
        print_json(info)
        return 0
    f = info["fwhm_um"]
    print(f"file:            {args.psf}")
    print(f"shape (Z, Y, X): {tuple(info['shape'])}")
    print(
        f"voxel size (µm): {tuple(info['voxel_size_um'])}"
        + ("  (assumed)" if info["voxel_size_assumed"] else "")
    )
    print(f"FWHM (µm):       z {f['z']:.4g}   y {f['y']:.4g}   x {f['x']:.4g}")
    print(
        f"peak at:         {tuple(info['peak'])}   expected centre {tuple(info['expected_centre'])}"
        f"   {'centred' if info['centred'] else 'NOT centred'}"
    )
    print(f"sum:             {info['sum']:.6g}   min {info['min']:.4g}")
    print(
        f"axial asymmetry: {info['axial_asymmetry']:+.3f}  (energy after − before the focal plane)"
    )
    return 0
